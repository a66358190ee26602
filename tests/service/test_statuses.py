"""One vocabulary per status: the transition tables, the guard on every status write, and everything derived from
the vocabularies (CHECK constraints, the API's Literals) or from the engine's registries."""

from __future__ import annotations

import doctest
import itertools
import re
import secrets
from typing import get_args

import pytest
from sqlalchemy import CheckConstraint, inspect

from api import orm, statuses
from api.db import Base, utcnow
from api.orm import Dataset, Experiment, Model, Trial, TrialAttempt
from api.repositories import experiments as experiments_repository
from api.repositories import models as models_repository
from api.schemas.datasets import DatasetRead
from api.schemas.experiments import ExperimentCreate, ExperimentRead, Pruner, TrialRead
from api.schemas.models import ModelRead
from api.statuses import (TRANSITIONS, AttemptStatus, DatasetStatus, ExperimentStatus, IllegalTransition,
                          ModelStatus, TrialStatus, check_transition, check_update, sources, values)
from nas_core.pruning import PRUNERS
from nas_core.strategies import STRATEGIES
from tests.service.helpers import add_experiment

VOCABULARIES = [DatasetStatus, ExperimentStatus, TrialStatus, AttemptStatus, ModelStatus]
TABLES = {Dataset: DatasetStatus, Experiment: ExperimentStatus, Trial: TrialStatus, TrialAttempt: AttemptStatus,
          Model: ModelStatus}
# What the product creates each row in (the columns' defaults).
INITIAL = {DatasetStatus: DatasetStatus.PROCESSING, ExperimentStatus: ExperimentStatus.QUEUED,
           TrialStatus: TrialStatus.PENDING, AttemptStatus: AttemptStatus.RUNNING, ModelStatus: ModelStatus.QUEUED}


# ------------------------------------------------------------------------------------------------ the tables

@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda vocabulary: vocabulary.__name__)
def test_the_helper_allows_exactly_the_moves_of_the_table(vocabulary):
    table = TRANSITIONS[vocabulary]
    assert set(table) == set(vocabulary)
    allowed = refused = 0
    for old, new in itertools.product(vocabulary, repeat=2):
        for given_old, given_new in ((old, new), (old.value, new.value)):  # members and stored strings alike
            if old == new or new in table[old]:
                check_transition(vocabulary, given_old, given_new)
                assert statuses.can_become(vocabulary, given_old, given_new)
                allowed += 1
            else:
                assert not statuses.can_become(vocabulary, given_old, given_new)
                with pytest.raises(IllegalTransition) as refusal:
                    check_transition(vocabulary, given_old, given_new)
                assert (refusal.value.entity, refusal.value.old, refusal.value.new) == \
                    (statuses.ENTITIES[vocabulary], old.value, new.value)
                assert f"from {old.value} to {new.value}" in str(refusal.value)
                refused += 1
    assert allowed + refused == 2 * len(vocabulary) ** 2 and allowed and refused


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda vocabulary: vocabulary.__name__)
def test_every_status_is_reachable_from_the_initial_one_and_sources_invert_the_table(vocabulary):
    table = TRANSITIONS[vocabulary]
    reached, frontier = {INITIAL[vocabulary]}, [INITIAL[vocabulary]]
    while frontier:
        for new in table[frontier.pop()] - reached:
            reached.add(new)
            frontier.append(new)
    assert reached == set(vocabulary)
    for new in vocabulary:
        assert set(sources(vocabulary, new)) == {old for old in vocabulary if new in table[old]} | {new}


def test_the_tables_hold_the_moves_the_service_makes():
    """A few moves whose loss would break the product at run time, named so a table edit cannot drop them."""
    for vocabulary, old, new in [
        (TrialStatus, "running", "pending"),  # its worker was lost: the same trial runs again
        (TrialStatus, "pending", "stopped"), (TrialStatus, "running", "stopped"),  # stopped on request
        (TrialStatus, "pruned", "succeeded"),  # the best early-stopped trial kept as the answer
        (ExperimentStatus, "canceled", "running"), (ExperimentStatus, "failed", "running"),  # resumed
        (ExperimentStatus, "succeeded", "running"),  # extended with a raised budget
        (ExperimentStatus, "queued", "canceled"), (ExperimentStatus, "canceling", "canceled"),
        (ModelStatus, "running", "queued"),  # requeued after an outage or a lost worker
        (AttemptStatus, "running", "lost"),
    ]:
        check_transition(vocabulary, old, new)
    for vocabulary, old, new in [(TrialStatus, "succeeded", "running"), (ExperimentStatus, "canceling", "running"),
                                 (ModelStatus, "ready", "running"), (DatasetStatus, "failed", "ready"),
                                 (AttemptStatus, "lost", "running")]:
        with pytest.raises(IllegalTransition):
            check_transition(vocabulary, old, new)


def test_an_unknown_status_names_the_vocabulary():
    with pytest.raises(ValueError, match="'done' is not a trial status"):
        check_transition(TrialStatus, "running", "done")
    with pytest.raises(ValueError, match="not a model status"):
        check_transition(ModelStatus, "pending", "running")


def test_a_conditional_update_is_checked_against_every_source_it_accepts():
    check_update(ModelStatus, ["queued", "running"], {"status": "running", "detail": None})
    check_update(ModelStatus, ["ready"], {"detail": None})  # writes no status: nothing to check
    with pytest.raises(IllegalTransition, match="model cannot go from ready to running"):
        check_update(ModelStatus, ["queued", "ready"], {"status": "running"})


def test_the_examples_in_the_module_run():
    assert doctest.testmod(statuses, optionflags=doctest.IGNORE_EXCEPTION_DETAIL).failed == 0


# ------------------------------------------------------------------------------------------------ derived names

def test_the_orm_vocabularies_and_check_constraints_are_the_enums():
    assert orm.DATASET_STATUSES == values(DatasetStatus) == ("processing", "ready", "failed")
    assert orm.EXPERIMENT_STATUSES == values(ExperimentStatus)
    assert orm.TRIAL_STATUSES == values(TrialStatus)
    assert orm.ATTEMPT_STATUSES == values(AttemptStatus)
    assert orm.MODEL_STATUSES == values(ModelStatus)
    assert all(type(value) is str for vocabulary in VOCABULARIES for value in values(vocabulary))
    for table, vocabulary in TABLES.items():
        checks = [constraint for constraint in Base.metadata.tables[table.__tablename__].constraints
                  if isinstance(constraint, CheckConstraint)]
        assert [str(check.sqltext) for check in checks] == [f"status IN {values(vocabulary)}"]
        assert table.__table__.c.status.default.arg == INITIAL[vocabulary]


def test_the_api_literals_are_the_enums_and_the_engine_registries():
    assert get_args(DatasetRead.model_fields["status"].annotation) == values(DatasetStatus)
    assert get_args(ExperimentRead.model_fields["status"].annotation) == values(ExperimentStatus)
    assert get_args(TrialRead.model_fields["status"].annotation) == values(TrialStatus)
    assert get_args(ModelRead.model_fields["status"].annotation) == values(ModelStatus)
    assert get_args(ExperimentCreate.model_fields["strategy"].annotation) == STRATEGIES
    assert ExperimentCreate.model_fields["strategy"].default in STRATEGIES
    assert get_args(Pruner.model_fields["kind"].annotation) == PRUNERS
    assert Pruner.model_fields["kind"].default in PRUNERS


# ------------------------------------------------------------------------------------------------ on a database

def test_the_migrated_database_checks_the_same_vocabularies(app_service):
    inspector = inspect(app_service.runtime.engine)
    for table, vocabulary in TABLES.items():
        checks = [check["sqltext"] for check in inspector.get_check_constraints(table.__tablename__)
                  if "status" in check["sqltext"]]
        assert len(checks) == 1, (table.__tablename__, checks)
        assert set(re.findall(r"'(\w+)'", checks[0])) == set(values(vocabulary)), table.__tablename__


def _finished_trial(app_service, app_key, status: str) -> str:
    _, (trial_id,) = add_experiment(app_service, project_id=app_key.project_id, dataset_id=None,
                                    trials=[{"status": status, "val_accuracy": 0.5, "params": 10}])
    return trial_id


def test_an_illegal_orm_write_is_refused_and_a_legal_one_kept(app_service, app_key):
    trial_id = _finished_trial(app_service, app_key, "succeeded")
    with app_service.runtime.unit_of_work() as session:
        trial = session.get(Trial, trial_id)
        with pytest.raises(IllegalTransition, match="trial cannot go from succeeded to running"):
            trial.status = "running"
        session.expire(trial)  # an expired row is loaded first, so its status is still checked
        with pytest.raises(IllegalTransition):
            trial.status = TrialStatus.PENDING
        with pytest.raises(ValueError, match="not a trial status"):
            trial.status = "done"
        assert trial.status == "succeeded"

    pruned_id = _finished_trial(app_service, app_key, "pruned")
    with app_service.runtime.unit_of_work() as session:
        trial = session.get(Trial, pruned_id)
        trial.status = TrialStatus.SUCCEEDED
        assert type(trial.status) is str  # what the database stores and the API serves
    with app_service.runtime.unit_of_work() as session:
        assert session.get(Trial, pruned_id).status == "succeeded"


def test_an_illegal_bulk_write_is_refused_before_it_runs(app_service, app_key):
    trial_id = _finished_trial(app_service, app_key, "succeeded")
    with app_service.runtime.unit_of_work() as session:
        trial = session.get(Trial, trial_id)
        experiment = session.get(Experiment, trial.experiment_id)
        model = Model(project_id=app_key.project_id, experiment_id=experiment.id, trial_id=trial.id, status="ready",
                      epochs=1, seed=1, storage_prefix=f"test/{secrets.token_hex(4)}/")
        session.add(model)
        session.flush()
        model_id = model.id
    with app_service.runtime.unit_of_work() as session:
        with pytest.raises(IllegalTransition, match="model cannot go from ready to running"):
            models_repository.update_status(session, model_id, expected_status="ready", status="running")
        assert models_repository.update_status(session, model_id, expected_status="ready")  # a touch moves nothing
    with app_service.runtime.unit_of_work() as session:
        assert session.get(Model, model_id).status == "ready"


def test_an_ended_attempt_keeps_its_status(app_service, app_key):
    trial_id = _finished_trial(app_service, app_key, "succeeded")
    lease_token = secrets.token_hex(16)
    with app_service.runtime.unit_of_work() as session:
        session.add(TrialAttempt(trial_id=trial_id, number=1, lease_token=lease_token, worker="test",
                                 status="succeeded", ended_at=utcnow()))
    with app_service.runtime.unit_of_work() as session:
        experiments_repository.update_attempt(session, lease_token, status="lost", error="late reaper")
    with app_service.runtime.unit_of_work() as session:
        (attempt,) = experiments_repository.attempts_for_trial(session, trial_id)
        assert (attempt.status, attempt.error) == ("succeeded", None)
