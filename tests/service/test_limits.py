"""Per-project quotas, the rate limit and idempotent POSTs, over HTTP on both backends, in process.

Quota and rate-limit tests talk to an API of their own with small limits (same database and object store as the
in-process service; on PostgreSQL its rate-limit buckets live in Redis under a key prefix of its own); the rest of
the suite never sees those limits. Nothing drains the experiments they create, so those stay queued.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.orm import Experiment
from api.services.search import scheduler
from tests import archives
from tests.service.helpers import AppService, experiment_body, ready_dataset, upload, wait_for_dataset

ARCHIVE = archives.make_image_folder_zip(classes={"ring": 12, "dot": 12}, size=(16, 16))
RATE_PER_MINUTE = 120


@pytest.fixture
def limited(app_service) -> Iterator[AppService]:
    overrides = {"project_max_active_experiments": 2, "project_max_active_trials": 3,
                 "project_max_storage_bytes": len(ARCHIVE) * 3 // 2, "rate_limit_per_minute": RATE_PER_MINUTE}
    if app_service.kind == "postgres":
        overrides["broker_key_prefix"] = f"nas-limited-{secrets.token_hex(4)}:"
    with app_service.variant(**overrides) as result:
        yield result


def assert_problem(response: httpx.Response, status: int, type: str, *mentions: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"/problems/{type}" and body["status"] == status, body
    for mention in mentions:
        assert mention in body["detail"], body
    return body


def test_experiment_quotas_refuse_and_create_nothing(app_service, app_client, app_key, limited):
    with limited.client(app_key.key) as client:
        dataset = ready_dataset(app_client, drain=app_service.drain)

        def create(concurrency: int) -> httpx.Response:
            return client.post("/v1/experiments", json=experiment_body(dataset["id"], strategy="random",
                                                                        concurrency=concurrency))

        first = create(2)
        assert first.status_code == 201, first.text
        refused = create(2)
        assert_problem(refused, 429, "quota-exceeded", "project_max_active_trials", "3")
        assert "retry-after" not in refused.headers  # frees when the project's work ends, not at a known time
        second = create(1)
        assert second.status_code == 201, second.text
        assert_problem(create(1), 429, "quota-exceeded", "project_max_active_experiments", "2")
        assert client.get("/v1/experiments").json()["total"] == 2

        # The scheduler never plans beyond the project's trial slots (here squeezed to 2), and a squeezed
        # experiment waits instead of finishing.
        squeezed = app_service.settings.model_copy(update={"project_max_active_trials": 2})
        session = app_service.runtime.sessionmaker()
        try:
            assert len(scheduler.schedule(session=session, settings=squeezed, experiment_id=first.json()["id"])) == 2
            assert scheduler.schedule(session=session, settings=squeezed, experiment_id=second.json()["id"]) == []
            waiting = session.get(Experiment, second.json()["id"])
            assert waiting.status == "running" and waiting.finished_at is None
        finally:
            session.rollback()
            session.close()

        canceled = client.post(f"/v1/experiments/{first.json()['id']}/cancel")
        assert canceled.status_code == 202 and canceled.json()["status"] == "canceled", canceled.text
        third = create(2)
        assert third.status_code == 201, third.text
        assert_problem(client.post(f"/v1/experiments/{first.json()['id']}/resume"), 429, "quota-exceeded",
                       "project_max_active_experiments")
        assert client.get(f"/v1/experiments/{first.json()['id']}").json()["status"] == "canceled"
        for experiment in (second, third):
            assert client.post(f"/v1/experiments/{experiment.json()['id']}/cancel").status_code == 202


def test_storage_quota_refuses_an_upload_before_storing_it(app_service, app_key, limited):
    with limited.client(app_key.key) as client:
        first = upload(client, ARCHIVE)
        assert first.status_code == 202, first.text
        assert_problem(upload(client, ARCHIVE), 413, "storage-quota-exceeded", "project_max_storage_bytes",
                       str(len(ARCHIVE) * 3 // 2))
        assert client.get("/v1/datasets").json()["total"] == 1
    stored = app_service.runtime.store.list_keys(f"{app_key.project_id}/datasets/")
    assert stored and {key.split("/")[2] for key in stored} == {first.json()["id"]}


def test_rate_limit_answers_429_with_retry_after_then_recovers(app_service, app_key, limited):
    with limited.client(app_key.key) as client:
        answers = []
        for _ in range(RATE_PER_MINUTE + 20):
            answers.append(client.get("/v1/datasets"))
            if answers[-1].status_code == 429:
                break
        limited_answer = answers[-1]
        assert_problem(limited_answer, 429, "rate-limited", str(RATE_PER_MINUTE))
        assert RATE_PER_MINUTE <= len(answers) - 1 <= RATE_PER_MINUTE + 10
        retry_after = int(limited_answer.headers["Retry-After"])
        assert 1 <= retry_after <= 60 // RATE_PER_MINUTE + 1
        other = app_service.new_key()
        with limited.client(other.key) as other_client:  # per project: another project is not limited
            assert other_client.get("/v1/datasets").status_code == 200
        time.sleep(retry_after)
        assert client.get("/v1/datasets").status_code == 200


def test_api_replicas_share_each_projects_rate_limit(app_service, app_key, limited):
    if app_service.kind != "postgres":
        pytest.skip("the embedded deployment's filesystem broker has no Redis to share buckets through")
    # A second API with the same settings: a limiter object of its own, the same buckets in Redis.
    with limited.variant() as replica, limited.client(app_key.key) as one, replica.client(app_key.key) as two:
        answers = []
        for number in range(2 * RATE_PER_MINUTE + 20):  # per-process buckets would allow twice the limit
            answers.append((one if number % 2 else two).get("/v1/datasets"))
            if answers[-1].status_code == 429:
                break
        assert_problem(answers[-1], 429, "rate-limited")
        assert RATE_PER_MINUTE <= len(answers) - 1 <= RATE_PER_MINUTE + 10


def test_idempotent_experiment_create_and_cancel_replay_and_refuse_another_body(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    # Never drained, so the cancels below always meet an unfinished search (a finished one answers 409).
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 2, "epochs_per_trial": 300})
    key = {"Idempotency-Key": secrets.token_hex(8)}
    first = app_client.post("/v1/experiments", json=body, headers=key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers, first.text
    replay = app_client.post("/v1/experiments", json=dict(reversed(list(body.items()))), headers=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert_problem(app_client.post("/v1/experiments", json={**body, "seed": 8}, headers=key), 422,
                   "idempotency-key-reused")
    assert app_client.get("/v1/experiments").json()["total"] == 1

    # Concurrent duplicates: one executes, the others get its answer.
    race_key = {"Idempotency-Key": secrets.token_hex(8)}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: app_client.post("/v1/experiments", json=body, headers=race_key), range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    assert app_client.get("/v1/experiments").json()["total"] == 2

    # The same key on another path is another request.
    cancel_key = {"Idempotency-Key": key["Idempotency-Key"]}
    canceled = app_client.post(f"/v1/experiments/{first.json()['id']}/cancel", headers=cancel_key)
    again = app_client.post(f"/v1/experiments/{first.json()['id']}/cancel", headers=cancel_key)
    assert canceled.status_code == again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == canceled.json()
    app_client.post(f"/v1/experiments/{answers[0].json()['id']}/cancel")


def test_idempotent_dataset_upload_replays_the_first_answer(app_service, app_client):
    key = {"Idempotency-Key": secrets.token_hex(8)}
    first = app_client.post("/v1/datasets", files={"file": ("a.zip", ARCHIVE, "application/zip")}, headers=key)
    assert first.status_code == 202, first.text
    replay = app_client.post("/v1/datasets", files={"file": ("a.zip", ARCHIVE, "application/zip")}, headers=key)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    other = archives.make_image_folder_zip(classes={"ring": 6, "dot": 6}, size=(16, 16))
    assert_problem(app_client.post("/v1/datasets", files={"file": ("a.zip", other, "application/zip")}, headers=key),
                   422, "idempotency-key-reused")
    assert_problem(app_client.post("/v1/datasets", files={"file": ("a.zip", ARCHIVE, "application/zip")},
                               data={"name": "renamed"}, headers=key), 422, "idempotency-key-reused")
    assert app_client.get("/v1/datasets").json()["total"] == 1
    app_service.drain()
    assert wait_for_dataset(app_client, first.json()["id"])["status"] == "ready"


def test_no_final_model_is_built_automatically_while_the_storage_quota_is_full(app_service, app_key):
    from api.orm import Dataset, Model, Trial
    from nas_core.space import default_search_space

    settings = app_service.settings.model_copy(update={"project_max_storage_bytes": 1000, "auto_model": True})
    space = default_search_space()
    candidate = space.decode(space.param_space.sample(random.Random(0)))
    with app_service.runtime.unit_of_work() as session:
        dataset = Dataset(project_id=app_key.project_id, name="full", status="ready", sha256="0" * 64,
                          size_bytes=1000, storage_prefix=f"{app_key.project_id}/datasets/full/", errors=[])
        session.add(dataset)
        session.flush()
        experiment = Experiment(project_id=app_key.project_id, dataset_id=dataset.id, name="quota", status="running",
                                strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1}, seed=1,
                                trials_created=1, auto_model=True)
        session.add(experiment)
        session.flush()
        session.add(Trial(experiment_id=experiment.id, number=1, status="succeeded", decisions={},
                          arch=candidate.to_dict(), arch_hash=candidate.arch.hash(), seed=1, val_accuracy=0.9))
        session.flush()
        scheduler.schedule(session=session, settings=settings, experiment_id=experiment.id)  # nothing left: finish
        experiment_id = experiment.id
    with app_service.runtime.unit_of_work() as session:
        finished = session.get(Experiment, experiment_id)
        assert finished.status == "succeeded"
        assert "storage" in finished.detail and "quota" in finished.detail, finished.detail
        assert session.query(Model).filter_by(experiment_id=experiment_id).count() == 0
