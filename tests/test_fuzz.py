"""A bounded fuzz pass with schemathesis over every OpenAPI schema: no 5xx, every error in the envelope."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.core.failures import FailureGroup

from tests.actors import approved_agent, sign_up

# Cases per operation; FUZZ_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
CONFORMANCE_ALL = os.environ.get("FUZZ_ALL_CHECKS") == "1"
CONFORMANCE = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
SCHEMAS = {
    "gateway": "/api/openapi.json",
    "user": "/openapi.json?format=json",
    "loan": "/openapi.json?format=json",
    "notification": "/openapi.json?format=json",
}


@pytest.fixture(scope="module")
def tokens(system, admin) -> dict[str, str]:
    """Each role's token: an approved agent reaches most operations, a customer their own loans and notifications."""
    return {
        "agent": approved_agent(system.gateway, admin).access,
        "admin": admin.access,
        "customer": sign_up(system.gateway, "customer").access,
    }


@pytest.mark.parametrize("label", list(SCHEMAS))
@pytest.mark.parametrize("who", ["agent", "admin", "customer"])
def test_no_server_error_and_every_error_in_the_envelope(system, tokens, label, who):
    base_url = system.url(label)
    schema = schemathesis.openapi.from_url(base_url + SCHEMAS[label])
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{label} publishes no operations"

    for operation in operations:
        if "/internal/" in operation.path or operation.method.upper() == "DELETE":
            continue  # internal routes need the service key; deleting users would break later tests
        _fuzz(operation, base_url, tokens[who], failures)

    assert not failures, "\n".join(failures[:20])


def _is_envelope(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("success") is False and bool(body.get("error", {}).get("code"))


def _fuzz(operation, base_url: str, token: str, failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case):
        response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
        where = f"{operation.method.upper()} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:  # every service is up: a 502/503/504 here is a crash behind the gateway
            failures.append(f"{where}: {response.text[:300]}")
        if response.status_code >= 400 and not _is_envelope(response):
            failures.append(f"{where}: not in the envelope: {response.text[:300]}")
        if CONFORMANCE:
            try:
                case.validate_response(response, checks=None if CONFORMANCE_ALL else CONFORMANCE)
            except FailureGroup as failed:  # every check that failed, each described
                failures.append(f"{where}: {str(failed)[:600]}")

    call()
