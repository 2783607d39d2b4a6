"""The second factor's use cases: set up, confirm, check, disable, reset, new recovery codes.

The rules are users.mfa's (pure); this module keeps the rows: the TOTP device under a row lock
(so two requests with one code cannot both pass), the recovery codes as keyed digests, and the
audit trail's record of each change. Removing the factor ends all the user's sessions.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.audit import record
from users import mfa
from users.errors import (
    CannotResetOwnFactor,
    InvalidMfaCode,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaNotStarted,
    UserNotFound,
    WrongPassword,
)
from users.models import RecoveryCode, TotpDevice, User
from users.sessions import EndReason, end_all_sessions


def _sealer() -> mfa.Sealer:
    return mfa.Sealer(settings.MFA_ENCRYPTION_KEY)


def has_factor(user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def role_needs_factor(user: User) -> bool:
    return user.role in settings.MFA_REQUIRED_ROLES


def must_enrol(user: User) -> bool:
    """Whether this user may sign in only to set up a second factor (their role needs one, they have none)."""
    return role_needs_factor(user) and not has_factor(user)


def start_enrolment(user: User) -> dict[str, str]:
    """A new pending TOTP secret (replacing an earlier pending one) and its otpauth:// URI."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.is_confirmed:
            raise MfaAlreadyEnabled()
        secret = mfa.new_secret()
        TotpDevice.objects.update_or_create(
            user=user, defaults={"sealed_secret": _sealer().seal(secret), "confirmed_at": None, "last_step": 0}
        )
    uri = mfa.provisioning_uri(secret, account=user.email, issuer=settings.MFA_ISSUER)
    return {"secret": secret, "otpauth_uri": uri}


def confirm_enrolment(user: User, code: str, *, request=None) -> list[str]:
    """Turn the pending secret on with its first code; returns the ten recovery codes (shown once)."""
    with transaction.atomic():
        codes = confirm_pending(user, code, request=request)
    if codes is None:
        raise InvalidMfaCode()
    return codes


def confirm_pending(user: User, code: str, *, request=None) -> list[str] | None:
    """confirm_enrolment's rows, in the caller's transaction; None (and the failure audited) for a wrong code."""
    device = TotpDevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        raise MfaNotStarted()
    if device.is_confirmed:
        raise MfaAlreadyEnabled()
    step = mfa.accepted_step(_sealer().open(device.sealed_secret), code.strip(), now=time.time(), last_step=0)
    if step is None:
        record(
            "mfa.failed", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
            outcome="failure", reason="wrong_code_at_enrolment",
        )  # fmt: skip
        return None
    device.confirmed_at, device.last_step = timezone.now(), step
    device.save(update_fields=["confirmed_at", "last_step"])
    record("mfa.enrolled", request=request, actor_id=user.id, subject_type="user", subject_id=user.id)
    return _new_recovery_codes(user)


def _new_recovery_codes(user: User) -> list[str]:
    codes = mfa.new_recovery_codes()
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, digest=mfa.code_digest(code, key=settings.MFA_ENCRYPTION_KEY)) for code in codes]
    )
    return codes


def check_code(user: User, code: str) -> str | None:
    """Which factor `code` passed as ("totp" or "recovery_code"), using it up; None when it is no good.

    Runs inside the caller's transaction: the device row is locked, so a code races nobody.
    """
    code = code.strip()
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return None
    if mfa.looks_like_totp(code):
        secret = _sealer().open(device.sealed_secret)
        step = mfa.accepted_step(secret, code, now=time.time(), last_step=device.last_step)
        if step is None:
            return None
        device.last_step = step
        device.save(update_fields=["last_step"])
        return "totp"
    digest = mfa.code_digest(code, key=settings.MFA_ENCRYPTION_KEY)
    used = RecoveryCode.objects.filter(user=user, digest=digest, used_at__isnull=True).update(used_at=timezone.now())
    return "recovery_code" if used else None


def remaining_recovery_codes(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def _checked_or_raise(user: User, code: str, *, request, action: str) -> str:
    """check_code, with a failure audited (outside the rolled-back block) and raised as a 400."""
    with transaction.atomic():
        method = check_code(user, code)
    if method is None:
        record(
            "mfa.failed", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
            outcome="failure", reason=f"wrong_code_at_{action}",
        )  # fmt: skip
        raise InvalidMfaCode()
    if method == "recovery_code":
        record_recovery_use(user, request=request)
    return method


def record_recovery_use(user: User, *, request) -> None:
    record(
        "mfa.recovery_code_used", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
        details={"remaining": remaining_recovery_codes(user)},
    )  # fmt: skip


def disable(user: User, *, password: str, code: str, request=None) -> None:
    """Turn the factor off: the password and a current code (or a recovery code) are both needed."""
    if not user.check_password(password):
        record(
            "mfa.failed", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
            outcome="failure", reason="wrong_password_at_disable",
        )  # fmt: skip
        raise WrongPassword("password")
    if not has_factor(user):
        raise MfaNotEnabled()
    _checked_or_raise(user, code, request=request, action="disable")
    with transaction.atomic():
        _remove_factor(user)
        record("mfa.disabled", request=request, actor_id=user.id, subject_type="user", subject_id=user.id)


def regenerate_recovery_codes(user: User, *, code: str, request=None) -> list[str]:
    """Ten new recovery codes for a current code; the old ones stop working."""
    if not has_factor(user):
        raise MfaNotEnabled()
    _checked_or_raise(user, code, request=request, action="new_recovery_codes")
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        record(
            "mfa.recovery_codes_regenerated", request=request, actor_id=user.id, subject_type="user",
            subject_id=user.id,
        )  # fmt: skip
    return codes


def reset(*, user_id: int, admin: User, request=None) -> User:
    """An admin removes a user's factor (a lost phone): they set one up again at their next sign-in.

    Not their own: that needs the password and a code (disable), or a stolen token alone would do it.
    """
    if user_id == admin.id:
        raise CannotResetOwnFactor()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise UserNotFound()
        if not TotpDevice.objects.filter(user=user).exists():
            raise MfaNotEnabled()
        _remove_factor(user)
        record("mfa.reset", request=request, actor_id=admin.id, subject_type="user", subject_id=user.id)
    return user


def _remove_factor(user: User) -> None:
    TotpDevice.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    end_all_sessions(user, EndReason.MFA_CHANGED)
