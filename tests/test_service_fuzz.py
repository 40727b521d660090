"""Fuzzing the HTTP API from its own OpenAPI document: whatever schemathesis sends, valid or not, the service answers
without a 5xx and as its document says (status codes, content types, response bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")

from fastapi import FastAPI  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from photo2cad.service.app import create_app  # noqa: E402
from tests.helpers import ServedIndex, settings_for  # noqa: E402

EXAMPLES_PER_OPERATION = 25
ADMIN = {"Authorization": "Bearer fuzz-admin-token-long-enough"}  # so that /admin/reload is fuzzed past its token check
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(served_index: ServedIndex) -> Iterator[Any]:
    app: FastAPI = create_app(settings_for(served_index.root, admin_token=ADMIN["Authorization"].split()[1]))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    try:  # the app's lifespan, which schemathesis started and would otherwise stop only at exit
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()
    except (ImportError, AttributeError):
        pass


# Driven by hand rather than by schemathesis' pytest plugin, whose lazy fixture schemas fail under pytest 9.
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_gets_a_server_error_or_an_undocumented_answer(api_schema: Any, mode: str) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/retrieve", "/shapes/{shape_id}", "/admin/reload", "/metrics"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as first found
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, headers=ADMIN)

        try:
            call()
        except Unsatisfiable:
            # Only unconstrained inputs (a path's free string) cannot be made invalid; /retrieve always can.
            assert mode == "negative" and operation.path != "/retrieve", operation.label
