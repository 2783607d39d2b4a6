"""The gateway's own routes: health, docs, the merged OpenAPI document, metrics; methods; CORS."""

import pytest

from tests.conftest import bearer

OWN_ROUTES = ["/health", "/health/live", "/health/ready", "/metrics", "/api/docs"]


@pytest.mark.parametrize("path", [spelling for path in OWN_ROUTES for spelling in (path, f"{path}/")])
def test_own_routes_answer_with_and_without_a_trailing_slash(gateway, path):
    assert gateway.request("GET", path).status == 200


def test_health_reports_every_service_with_its_latency(gateway):
    reply = gateway.request("GET", "/health")

    assert reply.json["status"] == "ok"
    assert set(reply.json["services"]) == {"user", "loan", "notification"}
    assert all(s["status"] == "up" and s["latency_ms"] >= 0 for s in reply.json["services"].values())


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/openapi.json/"])
def test_one_openapi_document_lists_every_services_public_paths_and_no_internal_one(gateway, path):
    document = gateway.request("GET", path).json

    paths = document["paths"]
    assert {"/health", "/api/user/things", "/api/loan/things", "/api/notification/things"} <= set(paths)
    assert "/api/loan/things/" not in paths  # one entry per path, though both spellings work
    assert not [p for p in paths if "internal" in p]
    operation = paths["/api/loan/things"]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/api/loan/open"]["get"]  # open to anyone: no token asked for
    assert paths["/api/loan/either"]["get"]["security"] == [{"bearerAuth": []}, {}]
    schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/loan_Thing"
    assert {"user_Thing", "loan_Thing"} <= set(document["components"]["schemas"])
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_document_lists_the_replies_the_gateway_gives_itself(gateway):
    paths = gateway.request("GET", "/api/openapi.json").json["paths"]
    replies = paths["/api/loan/things"]["get"]["responses"]

    assert {"200", "400", "429", "502", "503", "504"} <= set(replies)
    assert "413" not in replies  # no body, so never too large
    timeout = replies["504"]["content"]["application/json"]["schema"]
    assert timeout["properties"]["error"]["properties"]["code"]["enum"] == ["upstream_timeout"]
    assert timeout["properties"]["success"]["enum"] == [False]
    assert {"X-Correlation-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        replies["200"]["headers"]
    )
    assert "Retry-After" in replies["429"]["headers"]


def test_docs_page_renders_the_document(gateway):
    reply = gateway.request("GET", "/api/docs")

    assert "text/html" in reply.headers["Content-Type"]
    assert b"/api/openapi.json" in reply.body


def test_head_is_forwarded(gateway, stubs):
    reply = gateway.request("HEAD", "/api/user/.well-known/jwks.json")

    assert reply.status == 200
    assert reply.body == b""
    assert int(reply.headers["Content-Length"]) > 0  # the length of what GET would send, as the service said
    assert [r["method"] for s in ("user", "user_b") for r in stubs[s].requests()] == ["HEAD"]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW"])
def test_other_methods_are_405_in_the_envelope_and_never_forwarded(gateway, stubs, method):
    reply = gateway.request(method, "/api/loan/1", headers=bearer())

    assert reply.status == 405
    assert reply.json["error"]["code"] == "method_not_allowed"
    assert not stubs["loan"].requests()


def test_cors_allows_a_listed_origin_without_credentials(gateway):
    reply = gateway.request(
        "OPTIONS",
        "/api/user/login",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )

    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Credentials" not in reply.headers


def test_cors_refuses_other_origins(gateway):
    reply = gateway.request(
        "OPTIONS",
        "/api/user/login",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert "Access-Control-Allow-Origin" not in reply.headers
