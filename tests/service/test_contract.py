"""Contract fuzzing with schemathesis against the in-process app: no 5xx, and every response matches its schema.

Single operations: what a call queued (ingestion of an upload) runs before the next call. Call chains: queued tasks
stay queued, so a chain's answers never depend on when a worker got to them (hypothesis replays chains and needs the
same answers). Trials never train here: generated budgets could train for hours, and the contract is about answers.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

from api.main import create_app
from api.schemas.common import MAX_BUDGET_MINUTES, MAX_SQL_INT, MAX_TRIALS
from api.queue import SCHEDULE
from api.settings import Settings
from tests.service.helpers import experiment_body, ready_dataset

# The spec comes from the app itself (not a file), so the fuzzing always covers the routes that exist.
SPEC = create_app(Settings(data_dir=tempfile.mkdtemp(prefix="nas-spec-"), log_format="text")).openapi()
schema = schemathesis.openapi.from_dict(SPEC)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_keeps_its_contract(case, app_service, app_key):
    case.call_and_validate(app=app_service.app, headers={"Authorization": f"Bearer {app_key.key}"}, checks=CHECKS)
    app_service.drain()  # ingestion of what was uploaded (this project has no ready dataset, so no search runs)


def test_call_sequences_keep_their_contract(app_service, app_key):
    """Stateful: chains of calls that feed one response's ids into the next request, following the spec's links
    and those schemathesis infers (upload → read → samples → start a search → cancel / resume → trials →
    leaderboard → models; delete → read again is a 404)."""
    headers = {"Authorization": f"Bearer {app_key.key}"}
    with app_service.client(app_key.key) as client:
        # Starting points the chains find through the list operations: a ready dataset to start searches on, and
        # a canceled search (cancel, resume, trials and leaderboard then act on a real experiment).
        dataset = ready_dataset(client, drain=app_service.drain)
        experiment = client.post("/v1/experiments", json=experiment_body(
            dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 300})).json()
        app_service.drain(SCHEDULE.name)
        client.post(f"/v1/experiments/{experiment['id']}/cancel")
    calls: Counter[str] = Counter()

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"app": app_service.app, "headers": headers}

        def after_call(self, response, case):
            calls[f"{case.operation.label} {response.status_code}"] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[*CHECKS, use_after_free, ensure_resource_availability],
                                   transport_kwargs=kwargs)

        def teardown(self):
            # Searches a chain started end with it: every chain starts below the project's quota of active ones.
            with app_service.client(app_key.key) as client:
                for experiment in client.get("/v1/experiments", params={"limit": 200}).json()["data"]:
                    if experiment["status"] in ("queued", "running"):
                        client.post(f"/v1/experiments/{experiment['id']}/cancel")

    Workflow.run(settings=settings(max_examples=20, stateful_step_count=6, deadline=None, derandomize=True,
                                   suppress_health_check=list(HealthCheck)))
    # The chains reached real resources through ids taken from earlier responses.
    followed = [call for call in calls if "}" in call and call.endswith((" 200", " 202", " 204"))]
    assert followed, sorted(calls.items())


# Numbers a resume body may carry, written as JSON text: the edges of every bound and far past them, integers past
# 32 and 64 bits, and literals JSON parsers read as infinity (1e309) or as a denormal (5e-324).
_SETTINGS_MAX_TRIALS = Settings.model_fields["max_trials"].default
_EDGE_NUMBERS = ["0", "-1", "1", "0.5", "1.0", "5e-324", "1e-300", "1e308", "1e309", "-1e309",
                 str(_SETTINGS_MAX_TRIALS), str(_SETTINGS_MAX_TRIALS + 1), str(MAX_TRIALS), str(MAX_TRIALS + 1),
                 str(MAX_SQL_INT), str(MAX_SQL_INT + 1), str(2**63 - 1),
                 str(2**63), str(2**64), str(MAX_BUDGET_MINUTES), str(MAX_BUDGET_MINUTES + 1),
                 f"{MAX_BUDGET_MINUTES}.000001", "1" + "0" * 400, "true", "null", '"5"']
_NUMBERS = st.one_of(st.sampled_from(_EDGE_NUMBERS), st.integers(min_value=-(2**70), max_value=2**70).map(str),
                     st.floats(allow_nan=False, allow_infinity=False).map(json.dumps))
RESUME_BODIES = st.fixed_dictionaries({}, optional={"max_trials": _NUMBERS, "max_minutes": _NUMBERS}).map(
    lambda fields: "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}")


def test_resume_with_any_budget_leaves_every_route_of_the_experiment_answering(app_service, app_key):
    """Whatever budget a resume is sent, it is refused (422 / 409) or stored renderable: the resume and every later
    GET, list, trials, leaderboard and cancel answer without a 5xx and match their schema. (A resume once stored
    what JSON gave it, e.g. an infinite max_minutes, and every later read of the experiment answered 500.)"""
    resumed: Counter[int] = Counter()
    with app_service.client(app_key.key) as client:
        dataset = ready_dataset(client, drain=app_service.drain)
        experiment_id = client.post("/v1/experiments", json=experiment_body(
            dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 300},
            pruner={"kind": "none"})).json()["id"]
        path = f"/v1/experiments/{experiment_id}"
        app_service.drain(SCHEDULE.name)  # a trial planned for the search, never trained
        client.post(f"{path}/cancel")
        operation = {"resume": schema["/v1/experiments/{experiment_id}/resume"]["POST"],
                     "get": schema["/v1/experiments/{experiment_id}"]["GET"],
                     "list": schema["/v1/experiments"]["GET"],
                     "trials": schema["/v1/experiments/{experiment_id}/trials"]["GET"],
                     "leaderboard": schema["/v1/experiments/{experiment_id}/leaderboard"]["GET"],
                     "cancel": schema["/v1/experiments/{experiment_id}/cancel"]["POST"]}

        def answered(name: str, response) -> None:
            assert response.status_code < 500, (name, response.status_code, response.text)
            operation[name].validate_response(response)

        def settled() -> None:
            """Until the last cancel took effect (a trial that had started stops within a heartbeat)."""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                response = client.get(path)
                answered("get", response)
                if response.json()["status"] in ("canceled", "failed", "succeeded"):
                    return
                time.sleep(0.25)
            raise AssertionError(f"experiment still {response.json()['status']} after 60 s")

        @given(body=RESUME_BODIES)
        @example(body='{"max_minutes": 1e309}')  # a finite literal that parses to infinity
        @example(body='{"max_trials": 18446744073709551616, "max_minutes": 1e308}')
        @example(body=f'{{"max_trials": {MAX_SQL_INT + 1}, "max_minutes": {MAX_BUDGET_MINUTES + 1}}}')
        @example(body=f'{{"max_trials": {MAX_TRIALS}, "max_minutes": {MAX_BUDGET_MINUTES}}}')
        @settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def resume_then_use(body: str) -> None:
            settled()
            response = client.post(f"{path}/resume", content=body, headers={"Content-Type": "application/json"})
            resumed[response.status_code] += 1
            answered("resume", response)
            app_service.drain(SCHEDULE.name)  # the scheduler plans with the stored budget
            answered("get", client.get(path))
            answered("list", client.get("/v1/experiments", params={"limit": 500}))
            answered("trials", client.get(f"{path}/trials"))
            answered("leaderboard", client.get(f"{path}/leaderboard"))
            answered("cancel", client.post(f"{path}/cancel"))

        resume_then_use()
        settled()
    # Both sides were exercised: budgets stored and run with, and budgets refused.
    assert resumed[202] and resumed[422], resumed
