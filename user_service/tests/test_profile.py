import pytest


@pytest.mark.django_db
def test_profile_shows_the_caller(api, customer):
    data = api.as_user(customer).get("/api/user/profile/").json()["data"]

    assert data["id"] == customer.id


@pytest.mark.django_db
def test_profile_update_changes_names_only(api, agent):
    response = api.as_user(agent).put(
        "/api/user/profile",
        {"first_name": "New", "role": "admin", "email": "evil@example.com", "is_approved": False},
        format="json",
    )

    agent.refresh_from_db()
    assert response.status_code == 200
    assert agent.first_name == "New"
    assert (agent.role, agent.is_approved) == ("agent", True)
    assert agent.email != "evil@example.com"


@pytest.mark.django_db
def test_profile_update_validates_lengths(api, customer):
    response = api.as_user(customer).put("/api/user/profile", {"last_name": "x" * 151}, format="json")

    assert response.status_code == 400
    assert "last_name" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_unknown_path_is_404_in_the_envelope(api):
    response = api.get("/api/user/nope")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["success"] is False


@pytest.mark.django_db
def test_wrong_method_is_405_in_the_envelope(api, customer):
    response = api.as_user(customer).delete("/api/user/profile")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_client_correlation_id_is_returned(api):
    response = api.get("/health", HTTP_X_CORRELATION_ID="abc-123")

    assert response["X-Correlation-ID"] == "abc-123"


@pytest.mark.django_db
def test_unsafe_correlation_id_is_replaced(api):
    response = api.get("/health", HTTP_X_CORRELATION_ID="bad\nid")

    assert response["X-Correlation-ID"] != "bad\nid"
    assert len(response["X-Correlation-ID"]) == 32


@pytest.mark.django_db
def test_health_and_readiness(api):
    assert api.get("/health").json()["status"] == "ok"
    ready = api.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_openapi_document_lists_the_public_paths(api):
    response = api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    paths = response.json()["paths"]
    assert "/api/user/signup" in paths
    assert "/api/user/login" in paths


@pytest.mark.django_db
def test_openapi_document_asks_for_a_token_exactly_where_one_is_needed(api):
    paths = api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]

    anyone = ["/api/user/signup", "/api/user/login", "/api/user/token/refresh", "/api/user/.well-known/jwks.json"]
    for path in anyone:
        (operation,) = paths[path].values()
        assert operation["security"] == [{}], path  # anonymous only: no token asked for
    for path, method in [("/api/user/profile", "get"), ("/api/user/list-users", "get"), ("/api/user/logout", "post")]:
        assert paths[path][method]["security"] == [{"jwtAuth": []}], path


@pytest.mark.django_db
def test_openapi_document_shows_the_jwks_bare_and_login_in_the_envelope(api):
    paths = api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]

    jwks = paths["/api/user/.well-known/jwks.json"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "success" not in jwks["schema"].get("properties", {})  # RFC 7517's key set, as served
    signup = paths["/api/user/signup"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert signup["required"] == ["success", "data"]
    assert "409" in paths["/api/user/signup"]["post"]["responses"]  # the email is taken
