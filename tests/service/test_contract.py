"""Contract fuzzing with schemathesis against the live stack: no 5xx, and every response matches its schema."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

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
