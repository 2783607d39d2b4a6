"""The second factor: TOTP by RFC 6238's own vectors, enrolment, the two-step sign-in, replay, skew, lockout."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from common.audit.models import AuditEvent
from common.testing import run_together
from tests.factories import PASSWORD, UserFactory, give_totp
from users import mfa
from users.models import LoginChallenge, Role, TotpDevice

LOGIN = "/api/user/login"
SECOND_STEP = "/api/user/login/mfa"
ENROL_AT_SIGN_IN = "/api/user/login/mfa/enrol"


# --- the rules (users.mfa, no database) -------------------------------------------------------------

# RFC 6238 Appendix B, SHA-1, secret "12345678901234567890": its 8-digit codes end in our 6-digit ones.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix_time", "rfc_code"), RFC_VECTORS)
def test_codes_are_rfc_6238s(unix_time, rfc_code):
    assert mfa.accepted_step(RFC_SECRET, rfc_code[-6:], now=unix_time, last_step=0) == unix_time // 30


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_one_step_of_clock_skew_either_side_is_accepted(offset):
    now = 1_700_000_000
    code = pyotp.TOTP(RFC_SECRET).at(now + offset * 30)

    assert mfa.accepted_step(RFC_SECRET, code, now=now, last_step=0) == now // 30 + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_a_code_two_steps_away_is_refused(offset):
    now = 1_700_000_000
    code = pyotp.TOTP(RFC_SECRET).at(now + offset * 30)

    assert mfa.accepted_step(RFC_SECRET, code, now=now, last_step=0) is None


@given(
    secret=st.builds(lambda: pyotp.random_base32()),
    now=st.integers(min_value=60, max_value=10**10),
    earlier=st.integers(min_value=0, max_value=3),
)
def test_a_code_is_never_accepted_at_or_before_the_last_accepted_step(secret, now, earlier):
    step = now // 30
    code = pyotp.TOTP(secret).at(now)
    assert mfa.accepted_step(secret, code, now=now, last_step=step - 2) == step
    assert mfa.accepted_step(secret, code, now=now, last_step=step + earlier) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12 456", "abcdef", "١٢٣٤٥٦"])
def test_a_code_that_is_not_six_ascii_digits_is_refused(code):
    assert mfa.accepted_step(RFC_SECRET, code, now=59, last_step=0) is None


def test_recovery_codes_are_distinct_readable_and_compared_by_a_keyed_digest():
    codes = mfa.new_recovery_codes()

    assert len(set(codes)) == 10
    assert all(len(code) == 9 and code[4] == "-" for code in codes)
    digest = mfa.code_digest(codes[0], key="k")
    assert mfa.code_digest(f"  {codes[0].upper()} ", key="k") == digest
    assert mfa.code_digest(codes[0].replace("-", ""), key="k") == digest
    assert mfa.code_digest(codes[0], key="other") != digest


def test_a_sealed_secret_opens_only_with_its_key():
    sealed = mfa.Sealer("one").seal(RFC_SECRET)

    assert RFC_SECRET not in sealed
    assert mfa.Sealer("one").open(sealed) == RFC_SECRET
    with pytest.raises(ValueError, match="another key"):
        mfa.Sealer("two").open(sealed)


# --- through the API --------------------------------------------------------------------------------


def enrol(api, user) -> tuple[str, list[str]]:
    """Set up TOTP for `user` through the API; its secret and recovery codes."""
    started = api.as_user(user).post("/api/user/mfa/totp", format="json")
    assert started.status_code == 201, started.json()
    secret = started.json()["data"]["secret"]
    confirmed = api.post("/api/user/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, format="json")
    assert confirmed.status_code == 200, confirmed.json()
    api.credentials()
    return secret, confirmed.json()["data"]["recovery_codes"]


def next_code(secret: str) -> str:
    """A code one step ahead of now (accepted, thanks to the skew): never the one enrol() just used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def password_step(api, user) -> dict:
    response = api.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def audit(event: str, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event, **filters))


@pytest.mark.django_db
def test_enrolment_gives_a_secret_and_uri_and_a_first_code_turns_it_on(api, customer):
    started = api.as_user(customer).post("/api/user/mfa/totp", format="json")

    assert started.status_code == 201
    data = started.json()["data"]
    uri = pyotp.parse_uri(data["otpauth_uri"])
    assert uri.secret == data["secret"]
    assert uri.name == customer.email
    assert uri.issuer == "Loan Management System"
    wrong = api.post("/api/user/mfa/totp/confirm", {"code": "000000"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "invalid_mfa_code"
    assert TotpDevice.objects.get(user=customer).confirmed_at is None

    right = api.post("/api/user/mfa/totp/confirm", {"code": pyotp.TOTP(data["secret"]).now()}, format="json")

    assert right.status_code == 200
    assert len(right.json()["data"]["recovery_codes"]) == 10
    assert TotpDevice.objects.get(user=customer).is_confirmed
    assert data["secret"] not in TotpDevice.objects.get(user=customer).sealed_secret  # encrypted at rest
    assert len(audit("mfa.enrolled", subject_id=str(customer.id))) == 1
    again = api.post("/api/user/mfa/totp", format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "mfa_already_enabled"


@pytest.mark.django_db
def test_confirming_before_starting_is_409(api, customer):
    response = api.as_user(customer).post("/api/user/mfa/totp/confirm", {"code": "123456"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "mfa_not_started"


@pytest.mark.django_db
def test_an_enrolled_user_signs_in_in_two_steps(api, customer):
    secret, _ = enrol(api, customer)

    first = password_step(api, customer)

    assert first["mfa_required"] is True
    assert first["methods"] == ["totp", "recovery_code"]
    assert "access" not in first
    assert "refresh" not in first
    assert first["expires_in"] == 300
    second = api.post(SECOND_STEP, {"challenge": first["challenge"], "code": next_code(secret)}, format="json")
    assert second.status_code == 200
    tokens = second.json()["data"]
    assert tokens["user"]["id"] == customer.id
    assert api.as_token(tokens["access"]).get("/api/user/profile").status_code == 200
    assert len(audit("login.succeeded", subject_id=str(customer.id), details__second_factor="totp")) == 1


@pytest.mark.django_db
def test_a_challenge_is_used_once(api, customer):
    secret, _ = enrol(api, customer)
    challenge = password_step(api, customer)["challenge"]
    assert api.post(SECOND_STEP, {"challenge": challenge, "code": next_code(secret)}, format="json").status_code == 200

    again = api.post(SECOND_STEP, {"challenge": challenge, "code": pyotp.TOTP(secret).now()}, format="json")

    assert again.status_code == 400
    assert again.json()["error"]["code"] == "mfa_challenge_invalid"


@pytest.mark.django_db
def test_a_code_is_accepted_once_a_replay_is_refused(api, customer):
    secret, _ = enrol(api, customer)
    code = next_code(secret)
    first = password_step(api, customer)["challenge"]
    assert api.post(SECOND_STEP, {"challenge": first, "code": code}, format="json").status_code == 200

    second = password_step(api, customer)["challenge"]
    replay = api.post(SECOND_STEP, {"challenge": second, "code": code}, format="json")

    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "invalid_mfa_code"
    assert replay.json()["error"]["details"]["code"]
    assert len(audit("mfa.failed", subject_id=str(customer.id), reason="wrong_code_at_sign_in")) == 1


@pytest.mark.django_db
def test_an_expired_challenge_is_refused(api, customer):
    secret, _ = enrol(api, customer)
    challenge = password_step(api, customer)["challenge"]
    LoginChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.post(SECOND_STEP, {"challenge": challenge, "code": next_code(secret)}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "mfa_challenge_invalid"


@pytest.mark.django_db
def test_five_wrong_codes_end_the_challenge_even_for_the_right_code(api, customer):
    secret, _ = enrol(api, customer)
    challenge = password_step(api, customer)["challenge"]
    for _ in range(5):
        wrong = api.post(SECOND_STEP, {"challenge": challenge, "code": "000000"}, format="json")
        assert wrong.json()["error"]["code"] == "invalid_mfa_code"

    right = api.post(SECOND_STEP, {"challenge": challenge, "code": next_code(secret)}, format="json")

    assert right.status_code == 400
    assert right.json()["error"]["code"] == "mfa_challenge_invalid"
    assert len(audit("mfa.failed", subject_id=str(customer.id))) == 5


@pytest.mark.django_db
def test_wrong_codes_count_against_the_per_email_login_limit(api, customer, login_rates):
    login_rates(per_email="5/min")
    enrol(api, customer)  # 1: the code that confirmed it
    challenge = password_step(api, customer)["challenge"]  # 2
    for _ in range(3):  # 3, 4, 5
        assert api.post(SECOND_STEP, {"challenge": challenge, "code": "000000"}, format="json").status_code == 400

    over = api.post(SECOND_STEP, {"challenge": challenge, "code": "000000"}, format="json")
    password_again = api.post(LOGIN, {"email": customer.email, "password": PASSWORD}, format="json")

    assert over.status_code == 429
    assert password_again.status_code == 429  # the codes used up the password's budget too


@pytest.mark.django_db
def test_a_recovery_code_signs_in_once(api, customer):
    _, recovery = enrol(api, customer)

    first = password_step(api, customer)["challenge"]
    used = api.post(SECOND_STEP, {"challenge": first, "code": recovery[0].upper()}, format="json")
    second = password_step(api, customer)["challenge"]
    reused = api.post(SECOND_STEP, {"challenge": second, "code": recovery[0]}, format="json")

    assert used.status_code == 200
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "invalid_mfa_code"
    [record] = audit("mfa.recovery_code_used", subject_id=str(customer.id))
    assert record.details == {"remaining": 9}


@pytest.mark.django_db
def test_an_admin_without_a_factor_can_only_enrol_then_signs_in(api, admin):
    first = password_step(api, admin)

    assert first["mfa_enrolment_required"] is True
    assert "access" not in first
    refused = api.post(SECOND_STEP, {"challenge": first["challenge"], "code": "123456"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "mfa_not_started"
    secret = api.post(ENROL_AT_SIGN_IN, {"challenge": first["challenge"]}, format="json").json()["data"]["secret"]

    done = api.post(SECOND_STEP, {"challenge": first["challenge"], "code": pyotp.TOTP(secret).now()}, format="json")

    assert done.status_code == 200
    assert len(done.json()["data"]["recovery_codes"]) == 10
    assert api.as_token(done.json()["data"]["access"]).get("/api/user/list-users").status_code == 200
    api.credentials()
    assert password_step(api, admin)["mfa_required"] is True  # from now on: the code, every time


@pytest.mark.django_db
def test_an_enrolment_challenge_cannot_be_had_by_a_user_who_needs_none(api, customer):
    enrol(api, customer)
    challenge = password_step(api, customer)["challenge"]  # a `verify` challenge

    response = api.post(ENROL_AT_SIGN_IN, {"challenge": challenge}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "mfa_challenge_invalid"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "123456"}, "challenge"),
        ({"challenge": "x"}, "code"),
        ({"challenge": "x" * 129, "code": "1"}, "challenge"),
    ],
)
def test_the_second_step_refuses_bad_input_with_400(api, body, field):
    response = api.post(SECOND_STEP, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


@pytest.mark.django_db
def test_disabling_needs_the_password_and_a_current_code(api, customer):
    secret, _ = enrol(api, customer)
    api.as_user(customer)

    wrong_password = api.post(
        "/api/user/mfa/totp/disable", {"password": "nope", "code": next_code(secret)}, format="json"
    )
    wrong_code = api.post("/api/user/mfa/totp/disable", {"password": PASSWORD, "code": "000000"}, format="json")
    done = api.post("/api/user/mfa/totp/disable", {"password": PASSWORD, "code": next_code(secret)}, format="json")

    assert wrong_password.status_code == 400
    assert "password" in wrong_password.json()["error"]["details"]
    assert wrong_code.status_code == 400
    assert wrong_code.json()["error"]["code"] == "invalid_mfa_code"
    assert done.status_code == 200
    assert done.json()["data"] == {"mfa_enabled": False}
    api.credentials()
    assert "access" in password_step(api, customer)  # a customer needs no factor: one step again
    assert len(audit("mfa.disabled", subject_id=str(customer.id))) == 1


@pytest.mark.django_db
def test_new_recovery_codes_replace_the_old_ones(api, customer):
    secret, old = enrol(api, customer)

    response = api.as_user(customer).post("/api/user/mfa/recovery-codes", {"code": next_code(secret)}, format="json")

    new = response.json()["data"]["recovery_codes"]
    assert response.status_code == 200
    assert len(new) == 10
    assert not set(new) & set(old)
    api.credentials()
    challenge = password_step(api, customer)["challenge"]
    assert api.post(SECOND_STEP, {"challenge": challenge, "code": old[0]}, format="json").status_code == 400
    assert api.post(SECOND_STEP, {"challenge": challenge, "code": new[0]}, format="json").status_code == 200


@pytest.mark.django_db
def test_an_admin_resets_a_users_factor_and_it_is_audited(api, admin, customer):
    enrol(api, customer)

    not_admin = api.as_user(UserFactory(role=Role.CUSTOMER)).post(f"/api/user/mfa/reset/{customer.id}")
    reset = api.as_user(admin).post(f"/api/user/mfa/reset/{customer.id}")
    again = api.post(f"/api/user/mfa/reset/{customer.id}")

    assert not_admin.status_code == 403
    assert reset.status_code == 200
    assert reset.json()["data"] == {"user_id": customer.id, "mfa_enabled": False}
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "mfa_not_enabled"
    api.credentials()
    assert "access" in password_step(api, customer)
    [record] = audit("mfa.reset")
    assert (record.actor_id, record.subject_id) == (admin.id, str(customer.id))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_code_sent_to_two_challenges_at_once_signs_in_once(api, customer, login_rates):
    login_rates(per_email="100/min")  # thirteen attempts of one email in a second: the race, not the limit
    secret, _ = enrol(api, customer)
    challenges = [password_step(api, customer)["challenge"] for _ in range(6)]
    code = next_code(secret)

    def second_step(index: int) -> int:
        return APIClient().post(SECOND_STEP, {"challenge": challenges[index], "code": code}, format="json").status_code

    assert sorted(run_together(6, second_step)) == [200] + [400] * 5


@pytest.mark.django_db
def test_a_challenge_that_is_not_text_a_database_can_hold_is_a_400_not_a_500(api):
    for path in (SECOND_STEP, ENROL_AT_SIGN_IN):
        # A lone surrogate, escaped in the JSON text: valid JSON, no valid UTF-8.
        body = b'{"challenge": "\\ud800", "code": "123456"}'
        response = api.post(path, data=body, content_type="application/json")

        assert response.status_code == 400
        assert response.json()["success"] is False


@pytest.mark.django_db
def test_a_signed_in_users_code_guesses_count_against_their_login_limit(api, customer, login_rates):
    login_rates(per_email="3/min")
    api.as_user(customer).post("/api/user/mfa/totp", format="json")

    guesses = [
        api.post("/api/user/mfa/totp/confirm", {"code": f"00000{n}"}, format="json").status_code for n in range(4)
    ]

    assert guesses == [400, 400, 400, 429]


@pytest.mark.django_db
def test_an_admin_cannot_reset_their_own_factor_with_a_token_alone(api, admin):
    response = api.as_user(admin).post(f"/api/user/mfa/reset/{admin.id}")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "cannot_reset_own_factor"


@pytest.mark.django_db
def test_a_half_done_sign_in_dies_when_the_agent_is_rejected(api, pending_agent, admin):
    code = give_totp(pending_agent)
    challenge = password_step(api, pending_agent)["challenge"]
    api.as_user(admin).put(f"/api/user/approve-delete/{pending_agent.id}", {"action": "reject"}, format="json")
    api.credentials()

    response = api.post(SECOND_STEP, {"challenge": challenge, "code": code()}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "mfa_challenge_invalid"
