"""The second factor's rules, with no database: TOTP codes (pyotp, RFC 6238), recovery codes, sealing.

Pure functions of their arguments (the clock is one), so each rule is tested on its own: a code is
accepted for the current 30-second step and one step either side (clock skew), never for a step at
or before the last one accepted (no replay), and a recovery code is compared by a keyed digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from cryptography.fernet import Fernet, InvalidToken

STEP_SECONDS = 30  # RFC 6238's default, which every authenticator app uses
SKEW_STEPS = 1  # a code of the step before or after the current one is still accepted
DIGITS = 6
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or copied by hand


def new_secret() -> str:
    """A fresh base32 shared secret (160 bits, RFC 4226's recommendation)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)


def looks_like_totp(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def accepted_step(secret: str, code: str, *, now: float, last_step: int) -> int | None:
    """The time step `code` belongs to, if it is valid at `now` and newer than `last_step`; else None.

    The newest matching step wins, so a code is never accepted again once a later one has been.
    """
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now) // STEP_SECONDS
    for step in range(current + SKEW_STEPS, current - SKEW_STEPS - 1, -1):
        if step > last_step and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """`count` random codes like `k7dm-x2qp` (about 49 bits each), shown to the user once."""
    return [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(4)) for _ in range(2)) for _ in range(count)
    ]


def normalised_recovery_code(code: str) -> str:
    """How a typed recovery code is compared: blanks and dashes dropped, lower case."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def code_digest(code: str, *, key: str) -> str:
    """The keyed digest a recovery code is stored as: without the key, the table reveals nothing usable."""
    typed = normalised_recovery_code(code).encode("utf-8", "surrogatepass")
    return hmac.new(key.encode(), typed, hashlib.sha256).hexdigest()


def token_digest(token: str) -> str:
    """How a sign-in challenge token is stored (it is random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()  # any string a client sends


@dataclass(frozen=True)
class Sealer:
    """Encrypts TOTP secrets at rest with a key derived from a service secret (Fernet: AES-CBC + HMAC)."""

    key: str

    @property
    def _fernet(self) -> Fernet:
        derived = hashlib.sha256(b"lms-totp-secret\x00" + self.key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret; raises ValueError when the key has changed since it was sealed."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("the TOTP secret was sealed with another key") from exc
