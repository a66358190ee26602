"""Hot reads are memoised (trial documents, experiment revisions); these tests prove they never serve stale data."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import update

from api.db import utcnow
from api.orm import Experiment, Trial, TrialEpoch
from api.repositories import experiments as repository
from api.services.revision_cache import RevisionCache
from api.services.trial_documents import DocumentCache, TrialVersion
from nas_core.space import default_search_space


def _candidate():
    space = default_search_space()
    return space.decode(space.param_space.sample(random.Random(3)))


def add_experiment(service, project_id: str, *, finished: int) -> tuple[str, list[str], str]:
    """A running experiment with ``finished`` succeeded trials and one running trial (its id last)."""
    candidate = _candidate()
    now = utcnow()
    with service.runtime.unit_of_work() as session:
        experiment = Experiment(project_id=project_id, name="cached", status="running", strategy="random",
                                budget={"max_trials": finished + 1, "epochs_per_trial": 2}, seed=1,
                                trials_created=finished + 1, auto_model=False)
        session.add(experiment)
        session.flush()
        ids = []
        for number in range(1, finished + 2):
            running = number == finished + 1
            trial = Trial(experiment_id=experiment.id, number=number, decisions={}, arch=candidate.to_dict(),
                          arch_hash=candidate.arch.hash(), seed=number, attempts=1,
                          status="running" if running else "succeeded",
                          val_accuracy=None if running else 0.5 + number / 100, params=1000 + number,
                          latency_ms=1.0, started_at=now,
                          finished_at=None if running else now - timedelta(seconds=number))
            trial.epochs = [] if running else [TrialEpoch(epoch=1, val_accuracy=0.4, val_loss=1.0, train_loss=1.0,
                                                          seconds=0.1)]
            session.add(trial)
            session.flush()
            ids.append(trial.id)
        return experiment.id, ids[:-1], ids[-1]


def read_all(client, experiment_id: str) -> tuple[dict, dict, dict]:
    board = client.get(f"/v1/experiments/{experiment_id}/leaderboard", params={"limit": 10}).json()
    trials = client.get(f"/v1/experiments/{experiment_id}/trials", params={"limit": 10}).json()
    experiment = client.get(f"/v1/experiments/{experiment_id}").json()
    return board, trials, experiment


def test_reads_follow_a_trial_that_finishes_and_one_that_runs_again(app_service, app_client, app_key):
    experiment_id, finished_ids, running_id = add_experiment(app_service, app_key.project_id, finished=3)
    for _ in range(2):  # the second round is served from the caches
        board, trials, experiment = read_all(app_client, experiment_id)
    assert [row["id"] for row in board["data"]] == finished_ids[::-1] and board["total"] == 3
    assert [row["rank"] for row in board["data"]] == [1, 2, 3]
    assert {row["id"]: row["status"] for row in trials["data"]}[running_id] == "running"
    assert experiment["progress"]["running"] == 1 and experiment["best"]["trial_id"] == finished_ids[-1]

    # A running trial's epochs are written without the experiment lock: its document is never cached.
    with app_service.runtime.unit_of_work() as session:
        session.add(TrialEpoch(trial_id=running_id, epoch=1, val_accuracy=0.7, val_loss=0.5, train_loss=0.5,
                               seconds=0.1))
    row = next(r for r in app_client.get(f"/v1/experiments/{experiment_id}/trials").json()["data"]
               if r["id"] == running_id)
    assert [epoch["val_accuracy"] for epoch in row["epochs"]] == [0.7]

    # It finishes the way a worker finishes it: with the experiment locked.
    with app_service.runtime.unit_of_work() as session:
        repository.lock(session, experiment_id)
        trial = session.get(Trial, running_id)
        trial.status, trial.val_accuracy, trial.finished_at = "succeeded", 0.99, utcnow()
    board, trials, experiment = read_all(app_client, experiment_id)
    assert board["data"][0]["id"] == running_id and board["data"][0]["val_accuracy"] == 0.99
    assert board["total"] == 4 and running_id in board["pareto"]
    assert {row["id"]: row["status"] for row in trials["data"]}[running_id] == "succeeded"
    assert experiment["progress"]["succeeded"] == 4 and experiment["progress"]["running"] == 0
    assert experiment["best"]["trial_id"] == running_id

    # A finished trial that runs again and finishes anew shows its new result. No service path takes a trial
    # back from succeeded (the ORM refuses it), so the row is rewritten directly: the caches follow any write.
    with app_service.runtime.unit_of_work() as session:
        repository.lock(session, experiment_id)
        session.execute(update(Trial).where(Trial.id == running_id).values(status="running", attempts=2,
                                                                             finished_at=None))
    assert app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()["total"] == 3
    with app_service.runtime.unit_of_work() as session:
        repository.lock(session, experiment_id)
        trial = session.get(Trial, running_id)
        trial.status, trial.val_accuracy, trial.finished_at = "succeeded", 0.42, utcnow()
    board, trials, _ = read_all(app_client, experiment_id)
    row = next(r for r in board["data"] if r["id"] == running_id)
    assert row["val_accuracy"] == 0.42 and row["attempts"] == 2 and board["data"][-1]["id"] == running_id
    assert next(r for r in trials["data"] if r["id"] == running_id)["attempts"] == 2


def test_documents_match_the_schema_rendering(app_service, app_client, app_key):
    """The assembled pages equal what the response models would render (same fields, values and formats)."""
    from api.schemas.experiments import RankedTrial, TrialRead

    experiment_id, _, running_id = add_experiment(app_service, app_key.project_id, finished=2)
    board = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()
    with app_service.runtime.unit_of_work() as session:
        for row in board["data"]:
            expected = RankedTrial(rank=row["rank"], **dict(TrialRead.model_validate(session.get(Trial, row["id"]))))
            assert row == expected.model_dump(mode="json")
    trials = app_client.get(f"/v1/experiments/{experiment_id}/trials").json()
    with app_service.runtime.unit_of_work() as session:
        for row in trials["data"]:
            assert row == TrialRead.model_validate(session.get(Trial, row["id"])).model_dump(mode="json")


def test_document_cache_is_bounded_in_bytes():
    cache = DocumentCache(max_bytes=100)
    versions = [TrialVersion(f"t{i}", "succeeded", None) for i in range(5)]
    for version in versions:
        cache.put(version, b"x" * 30)
    assert cache.size <= 100
    assert cache.get(versions[0]) is None and cache.get(versions[-1]) == b"x" * 30
    cache.put(TrialVersion("huge", "succeeded", None), b"x" * 101)  # larger than the whole cache: not kept
    assert cache.get(TrialVersion("huge", "succeeded", None)) is None and cache.size <= 100
    assert cache.get(TrialVersion("t4", "failed", None)) is None  # another state of the trial is another document


def test_revision_cache_recomputes_on_a_new_revision_and_evicts_the_oldest():
    cache = RevisionCache(max_entries=2)
    calls = []

    def compute(value):
        return lambda: calls.append(value) or value

    assert cache.get_or_compute("a", 1, compute("a1")) == "a1"
    assert cache.get_or_compute("a", 1, compute("again")) == "a1"
    assert cache.get_or_compute("a", 2, compute("a2")) == "a2"
    cache.put("b", 1, "b1")
    cache.put("c", 1, "c1")
    assert cache.get("a", 2) is None and cache.get("b", 1) == "b1" and cache.get("c", 1) == "c1"
    assert calls == ["a1", "a2"]
