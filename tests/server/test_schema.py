"""schemathesis against the server's own /openapi.yaml: generated requests to every operation (token limits capped
so each stays short) never get a 5xx, every response matches the document (status, content type, body), requests
that violate the document are refused, and undeclared methods get a 405. Not checked: that every request the
document allows is accepted — one can still ask for more tokens than the context leaves after its prompt, or name a
tree spelling the document's string cannot describe, and those are 400s by design."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import SMALL, Server


@pytest.fixture(scope="module")
def schema_server():
    server = Server("--model", str(SMALL), "--ctx-size", "256", "--queue", "64")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def api_schema(schema_server):
    schema = schemathesis.openapi.from_url(schema_server.base + "/openapi.yaml")
    schema.config.base_url = schema_server.base
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


def cap(body):
    """Generated bodies ask for short generations: at most 3 tokens, audits of at most 10 samples."""
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(body.get(key), int) and not isinstance(body.get(key), bool):
                body[key] = max(1, min(body[key], 3))
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = 3
        if isinstance(body.get("samples"), int) and not isinstance(body.get("samples"), bool):
            body["samples"] = min(body["samples"], 10)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_match_the_document(case):
    cap(case.body)
    case.call_and_validate(timeout=120, excluded_checks=[positive_data_acceptance])
