"""Property-based API testing from Doorstep's own OpenAPI schema (schemathesis): whatever a
client sends to any operation, the API never answers 5xx, and its answers keep the status
codes, content types and response shapes the schema promises."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import MerchantCtx

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_operation_survives_generated_requests(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime, migrate=False))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            if case.path == "/v1/plans" and isinstance(case.body, dict):
                case.body["time_limit_s"] = 0.1  # keep generated plans quick
            case.call_and_validate(headers=merchant.headers, checks=CHECKS)

        check()
