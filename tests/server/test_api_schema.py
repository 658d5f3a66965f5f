"""Schemathesis against the OpenAPI document: generated requests to every operation, as an
admin, never get a 5xx, and every response matches the schema the document declares for it
(status, content type, body)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.api_app import ApiApp, api_app

EXAMPLES = 12


# Built when the module is collected: schemathesis makes one test per operation of the
# document, so it needs the document before the tests run (its lazy fixture loader does not
# work with this pytest).
_DIRECTORY = tempfile.TemporaryDirectory(prefix="fundpool-schema-")
SERVED = api_app(Path(_DIRECTORY.name) / "data")
schema = schemathesis.openapi.from_asgi("/openapi.json", SERVED.app)


@pytest.fixture(scope="module")
def served() -> ApiApp:
    return SERVED


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case: Any, served: ApiApp) -> None:
    case.call_and_validate(
        headers=served.headers("admin"),
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance],
    )


def test_the_document_is_openapi_3_and_names_every_error(served: ApiApp) -> None:
    document = served.app.openapi()
    assert document["openapi"].startswith("3.")
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in item.items():
            for status in ("401", "403", "422"):
                assert status in operation["responses"], (method, path, status)


