"""A previous public key that is configured but missing is skipped, not a 500 on every request."""

import pytest

from users.tokens import verification_keys


@pytest.fixture
def missing_previous_key(settings, tmp_path):
    settings.JWT_PREVIOUS_PUBLIC_KEY_PATHS = [str(tmp_path / "gone.pem")]
    verification_keys.cache_clear()
    yield
    settings.JWT_PREVIOUS_PUBLIC_KEY_PATHS = []
    verification_keys.cache_clear()


@pytest.mark.django_db
def test_a_missing_previous_key_leaves_signing_and_verifying_working(api, customer, missing_previous_key):
    profile = api.as_user(customer).get("/api/user/profile")
    jwks = api.get("/api/user/.well-known/jwks.json")

    assert profile.status_code == 200
    assert len(jwks.json()["keys"]) == 1
