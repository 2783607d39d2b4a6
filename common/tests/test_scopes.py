"""common.scopes: a person's token is not limited; an API key's token reaches only views naming its scope."""

import pytest

from common import scopes


class View:
    required_scopes = {"GET": scopes.LOANS_READ, "POST": scopes.LOANS_WRITE}


class Unnamed:
    pass


def test_a_persons_token_is_never_limited():
    scopes.check({"user_id": 1}, Unnamed(), "DELETE")


@pytest.mark.parametrize(
    ("method", "granted"), [("GET", "loans:read"), ("HEAD", "loans:read"), ("POST", "x loans:write")]
)
def test_a_key_with_the_scope_passes(method, granted):
    scopes.check({"api_key_id": 3, "scope": granted}, View(), method)


@pytest.mark.parametrize(
    ("view", "method", "granted", "message"),
    [
        (View(), "POST", "loans:read", "This API key lacks the scope loans:write."),
        (View(), "DELETE", "loans:read loans:write", "API keys cannot call this endpoint."),
        (Unnamed(), "GET", " ".join(scopes.ALL), "API keys cannot call this endpoint."),
        (View(), "GET", "", "This API key lacks the scope loans:read."),
        (None, "GET", "loans:read", "API keys cannot call this endpoint."),
    ],
)
def test_a_key_without_it_is_refused_with_the_scope_named(view, method, granted, message):
    with pytest.raises(scopes.InsufficientScope) as refused:
        scopes.check({"api_key_id": 3, "scope": granted}, view, method)

    assert str(refused.value.detail) == message
    assert refused.value.detail.code == "insufficient_scope"


def test_the_scope_claim_is_split_on_spaces():
    assert scopes.granted({"api_key_id": 1, "scope": "loans:read  loans:write"}) == {"loans:read", "loans:write"}
    assert scopes.granted({"scope": "loans:read"}) is None
