"""Contract fuzzing with schemathesis against the live stack: no 5xx, and every response matches its schema."""

from __future__ import annotations

import tempfile
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

from api.main import create_app
from api.settings import Settings

# The spec comes from the app itself (not a file), so the fuzzing always covers the routes that exist.
SPEC = create_app(Settings(data_dir=tempfile.mkdtemp(prefix="nas-spec-"), log_format="text")).openapi()
schema = schemathesis.openapi.from_dict(SPEC)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_keeps_its_contract(case, stack, api_key):
    case.call_and_validate(base_url=stack.base_url, headers={"Authorization": f"Bearer {api_key.key}"},
                           checks=CHECKS)


def test_call_sequences_keep_their_contract(stack, api_key):
    """Stateful: chains of calls that feed one response's ids into the next request, following the spec's links
    and those schemathesis infers (upload → read → samples → start a search → cancel / resume → trials →
    leaderboard → models; delete → read again is a 404)."""
    from tests.service.test_experiments import experiment_body, ready_dataset

    headers = {"Authorization": f"Bearer {api_key.key}"}
    with stack.client(api_key.key) as client:
        # Starting points the chains find through the list operations: a ready dataset to start searches on, and
        # a canceled search (cancel, resume, trials and leaderboard then act on a real experiment).
        dataset = ready_dataset(client)
        experiment = client.post("/v1/experiments", json=experiment_body(
            dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 300})).json()
        client.post(f"/v1/experiments/{experiment['id']}/cancel")
    calls: Counter[str] = Counter()

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": stack.base_url, "headers": headers}

        def after_call(self, response, case):
            calls[f"{case.operation.label} {response.status_code}"] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[*CHECKS, use_after_free, ensure_resource_availability],
                                   transport_kwargs=kwargs)

        def teardown(self):
            # Searches started with generated budgets must not keep the shared workers busy afterwards.
            with stack.client(api_key.key) as client:
                for experiment in client.get("/v1/experiments", params={"limit": 200}).json()["data"]:
                    if experiment["status"] in ("queued", "running"):
                        client.post(f"/v1/experiments/{experiment['id']}/cancel")

    Workflow.run(settings=settings(max_examples=20, stateful_step_count=6, deadline=None, derandomize=True,
                                   suppress_health_check=list(HealthCheck)))
    # The chains reached real resources through ids taken from earlier responses.
    followed = [call for call in calls if "}" in call and call.endswith((" 200", " 202", " 204"))]
    assert followed, sorted(calls.items())
