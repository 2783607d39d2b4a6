"""A configured public-key file that is missing (or not a key) is skipped with a warning, never a 500."""

import logging

import pytest

from common.keys import load_public_key, public_jwk
from common.testing import test_keys
from common.tokens import KeySet, TokenVerifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def missing_pem(tmp_path) -> str:
    return str(tmp_path / "keys" / "jwt_public.pem")


def test_a_missing_file_is_skipped_with_a_warning_naming_it(missing_pem, caplog):
    with caplog.at_level(logging.WARNING, logger="lms.keys"):
        keys = KeySet(pem_paths=[missing_pem, str(test_keys.public_path)])

    verifier = TokenVerifier(keys=keys, issuer="lms-user-service", audience="lms")
    assert verifier.verify(test_keys.mint(user_id=3, role="customer")).user_id == 3
    assert [record.path for record in caplog.records if record.name == "lms.keys"] == [missing_pem]


def test_a_file_that_holds_no_key_is_skipped_too(tmp_path, caplog):
    broken = tmp_path / "broken.pem"
    broken.write_text("not a key")

    with caplog.at_level(logging.WARNING, logger="lms.keys"):
        keys = KeySet(pem_paths=[str(broken)])

    assert keys.key_for(test_keys.kid) is None
    assert "not an unencrypted PEM key" in caplog.text


def test_with_the_file_missing_the_jwks_still_verifies(api, settings, http_server, missing_pem):
    issuer = http_server()
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})
    settings.JWT_PUBLIC_KEY_PATHS = [missing_pem]
    settings.JWT_JWKS_URL = f"{issuer.url}/api/user/.well-known/jwks.json"

    response = api.as_role("admin").get("/admin-only")

    assert response.status_code == 200


def test_with_the_file_missing_and_no_jwks_a_token_is_a_401_not_a_500(api, settings, missing_pem):
    settings.JWT_PUBLIC_KEY_PATHS = [missing_pem]
    settings.JWT_JWKS_URL = ""

    responses = [api.as_role("admin").get("/admin-only") for _ in range(2)]

    assert [response.status_code for response in responses] == [401, 401]
    assert responses[0].json()["error"]["code"] == "invalid_token"
