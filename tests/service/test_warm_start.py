"""Warm start over HTTP and in the scheduler: which sources are eligible, what the experiment echoes, and the seeds
reaching the strategy without counting as the experiment's trials."""

from __future__ import annotations

import random

import pytest

from api.db import utcnow
from api.orm import Experiment, Project, Trial, TrialEpoch
from api.schemas.experiments import ExperimentCreate
from api.services import experiments as experiments_service
from api.services.search import scheduler
from api.services.search.history import history_records
from nas_core.space import default_search_space
from tests.service.helpers import TINY, TINY_SPACE, all_trials, experiment_body, ready_dataset

SIDE = 16  # ready_dataset's images


def _in_space_candidates(count: int) -> list:
    space = default_search_space().with_overrides(TINY_SPACE)
    rng, found = random.Random(3), {}
    while len(found) < count:
        candidate = space.decode(space.param_space.sample(rng), input_side=SIDE)
        found.setdefault(candidate.hash(), candidate)
    return list(found.values())


def _source(service, *, project_id: str, dataset_id: str, inside: int = 3, outside: int = 2) -> str:
    """A finished experiment on ``dataset_id``: ``inside`` succeeded trials the tiny space can express, one pruned
    trial with a two-epoch curve, ``outside`` succeeded trials it cannot (a 4-channel stem), one failed trial."""
    candidates = _in_space_candidates(inside + 1)
    with service.runtime.unit_of_work() as session:
        experiment = Experiment(project_id=project_id, dataset_id=dataset_id, name="source", status="succeeded",
                                strategy="evolution", budget={"max_trials": 10, "epochs_per_trial": 2}, seed=3,
                                auto_model=False, finished_at=utcnow())
        session.add(experiment)
        session.flush()
        rows = [(candidate, "succeeded", 0.5 + 0.1 * index) for index, candidate in enumerate(candidates[:inside])]
        rows += [(candidates[inside], "pruned", 0.3)] + [(TINY, "succeeded", 0.9)] * outside + [(TINY, "failed", None)]
        for number, (candidate, status, accuracy) in enumerate(rows, start=1):
            trial = Trial(experiment_id=experiment.id, number=number, status=status, decisions={},
                          arch=candidate.to_dict(), arch_hash=candidate.arch.hash(), seed=number,
                          val_accuracy=accuracy, val_balanced_accuracy=accuracy, params=1000 * number, flops=10**6,
                          latency_ms=0.1, finished_at=utcnow())
            session.add(trial)
            session.flush()
            if status == "pruned":
                for epoch in (1, 2):
                    session.add(TrialEpoch(trial_id=trial.id, epoch=epoch, val_accuracy=0.2 * epoch, val_loss=1.0,
                                           val_balanced_accuracy=0.2 * epoch, train_loss=1.0, seconds=0.1))
        return experiment.id


def _warm(dataset_id: str, *ids: str, **overrides) -> dict:
    return experiment_body(dataset_id, warm_start={"experiment_ids": list(ids)}, **overrides)


def test_a_warm_start_echoes_what_seeds_it_and_shows_none_of_it_as_trials(app_service, app_client, app_key):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    source = _source(app_service, project_id=app_key.project_id, dataset_id=dataset["id"])
    created = app_client.post("/v1/experiments", json=_warm(dataset["id"], source))
    assert created.status_code == 201, created.text
    body = created.json()
    # 3 succeeded + 1 pruned inside the space; the 2 outside it are counted; failed trials never seed
    seeds = [{"experiment_id": source, "trial_number": number} for number in (1, 2, 3, 4)]  # oldest first
    expected = {"experiment_ids": [source], "trials_used": 4, "trials_skipped": 2,
                "skipped_by_reason": {"outside_search_space": 2}, "seeds": seeds}
    assert body["warm_start"] == expected
    assert body["reproducibility"]["warm_start"]["experiment_ids"] == [source]
    assert body["reproducibility"]["warm_start"]["seeds"] == seeds
    assert len(body["reproducibility"]["warm_start"]["records_sha256"]) == 64
    again = app_client.get(f"/v1/experiments/{body['id']}").json()
    assert again["warm_start"] == expected and again["progress"]["completed"] == 0
    assert all_trials(app_client, body["id"]) == []
    cold = app_client.post("/v1/experiments", json=experiment_body(dataset["id"])).json()
    assert cold["warm_start"] is None and "warm_start" not in cold["reproducibility"]


def test_a_space_that_excludes_every_source_trial_seeds_nothing(app_service, app_client, app_key):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    source = _source(app_service, project_id=app_key.project_id, dataset_id=dataset["id"])
    body = _warm(dataset["id"], source, search_space={**TINY_SPACE, "stem_width": 24})
    echoed = app_client.post("/v1/experiments", json=body).json()["warm_start"]
    assert echoed == {"experiment_ids": [source], "trials_used": 0, "trials_skipped": 6,
                      "skipped_by_reason": {"outside_search_space": 6}, "seeds": []}


def test_warm_start_sources_are_checked(app_service, app_client, app_key):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    source = _source(app_service, project_id=app_key.project_id, dataset_id=dataset["id"])
    other_key = app_service.new_key()
    with app_service.client(other_key.key) as other_client:
        other_dataset = ready_dataset(other_client, drain=app_service.drain)
    foreign = _source(app_service, project_id=other_key.project_id, dataset_id=other_dataset["id"])
    for missing in (foreign, "0" * 32):  # another project's experiment is as unknown as a made-up id
        response = app_client.post("/v1/experiments", json=_warm(dataset["id"], source, missing))
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "/problems/not-found" and missing in response.json()["detail"]
    for ids, field in (([source, source], "body.warm_start.experiment_ids[1]"),
                       ([], "body.warm_start.experiment_ids"), ([source] * 11, "body.warm_start.experiment_ids")):
        response = app_client.post("/v1/experiments", json=_warm(dataset["id"], *ids))
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == [field]


def test_a_dataset_of_other_classes_or_channels_conflicts_and_reordered_classes_do_not(
        app_service, app_client, app_key):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    source = _source(app_service, project_id=app_key.project_id, dataset_id=dataset["id"])
    cases = [({"classes": {"ring": 12, "square": 12}}, "classes only in"),
             ({"mode": "L"}, "image channels"),
             ({"classes": {"dot": 10, "ring": 14}, "seed": 5}, None)]  # same names, other order and counts
    for kwargs, conflict in cases:
        target = ready_dataset(app_client, drain=app_service.drain, **kwargs)
        response = app_client.post("/v1/experiments", json=_warm(target["id"], source))
        if conflict is None:
            assert response.status_code == 201, response.text
            assert response.json()["warm_start"]["trials_used"] == 4
            continue
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["type"] == "/problems/warm-start-incompatible" and conflict in problem["detail"], problem
        assert source in problem["detail"] and target["id"] in problem["detail"]


@pytest.mark.parametrize("strategy", ["evolution", "tpe"])
def test_the_scheduler_puts_the_seeds_before_the_experiments_own_trials(app_service, app_client, app_key,
                                                                        monkeypatch, strategy):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    source = _source(app_service, project_id=app_key.project_id, dataset_id=dataset["id"], inside=6)
    histories: list[list] = []
    strategy_for = scheduler.strategy_for

    class Recording:
        def __init__(self, wrapped):
            self.wrapped = wrapped

        def ask(self, space, history, *args, **kwargs):
            histories.append(list(history))
            return self.wrapped.ask(space, history, *args, **kwargs)

    monkeypatch.setattr(scheduler, "strategy_for", lambda experiment: Recording(strategy_for(experiment)))
    session = app_service.runtime.sessionmaker()
    try:  # never committed, so nothing is enqueued and no worker runs it
        data = ExperimentCreate(**_warm(dataset["id"], source, strategy=strategy, concurrency=2,
                                        budget={"max_trials": 2, "epochs_per_trial": 2}))
        experiment = experiments_service.create_experiment(session=session, settings=app_service.settings,
                                                           project=session.get(Project, app_key.project_id),
                                                           data=data)
        session.flush()
        # 7 seeds and a budget of 2: both trials are created, the seeds use none of it
        created = scheduler.schedule(session=session, settings=app_service.settings, experiment_id=experiment.id)
        assert len(created) == 2
        assert histories, "the strategy was never asked"
        seeds = [record for record in histories[0] if record.seeded]
        assert [record.number for record in seeds] == list(range(-7, 0))
        assert histories[0][:7] == seeds  # before the experiment's own records
        assert {record.status for record in seeds} == {"succeeded", "pruned"}
        pruned = next(record for record in seeds if record.status == "pruned")
        assert pruned.intermediate and pruned.value == pytest.approx(0.3)
        seeded_keys = {scheduler.search_space_for(experiment).param_space.key(r.decisions) for r in seeds}
        own = scheduler.repository.all_trials(session, experiment.id)
        assert [trial.number for trial in own] == [1, 2]
        assert not seeded_keys & {scheduler.search_space_for(experiment).param_space.key(t.decisions) for t in own}
        # what pruning compares a trial with: the experiment's own trials only
        assert not any(record.seeded for record in history_records(session, experiment))
    finally:
        session.rollback()
        session.close()


def test_the_cli_sends_the_warm_start_and_prints_its_echo(monkeypatch):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from cli.commands import experiments as commands
    from nas_client.models import WarmStartRead

    sent = []
    echo = {"experiment_ids": ["a" * 32, "b" * 32], "trials_used": 40, "trials_skipped": 3,
            "skipped_by_reason": {"outside_search_space": 3}}

    def fake_call(operation, *, client, body):
        sent.append(body.to_dict())
        return SimpleNamespace(id="e" * 32, strategy="tpe", budget={"max_trials": 2, "epochs_per_trial": 1},
                               warm_start=WarmStartRead.from_dict(echo))

    monkeypatch.setattr(commands, "call", fake_call)
    monkeypatch.setattr(commands, "connect", lambda url, key: None)
    result = CliRunner().invoke(commands.app, ["create", "--dataset", "d" * 32, "--warm-start",
                                               f"{'a' * 32}, {'b' * 32},"])
    assert result.exit_code == 0, result.output
    assert sent[0]["warm_start"] == {"experiment_ids": ["a" * 32, "b" * 32]}
    assert "warm start: 40 trials of 2 experiment(s) seed the strategy, 3 left out" in result.output
