"""The user, session, token and second-factor objects of API.md, shared by every view that returns them."""

from rest_framework import serializers

from users import mfa
from users.models import User, UserSession


class UserOutput(serializers.ModelSerializer):
    is_approved = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "role", "is_approved", "created_at"]
        read_only_fields = fields


def user_data(user: User) -> dict:
    return UserOutput(user).data


def users_data(users) -> list[dict]:
    return UserOutput(users, many=True).data


class SessionOutput(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="Whether this is the session of the token asking.")

    class Meta:
        model = UserSession
        fields = ["id", "created_at", "last_used_at", "ip", "user_agent", "current"]
        read_only_fields = fields

    def get_current(self, session: UserSession) -> bool:
        return str(session.id) == self.context.get("current")


def sessions_data(sessions, *, current: str | None) -> list[dict]:
    return SessionOutput(sessions, many=True, context={"current": current}).data


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(help_text="An RS256 access token (JWT_ACCESS_LIFETIME_SECONDS).")
    refresh = serializers.CharField(help_text="The session's refresh token; it works once.")


def _recovery_codes(**kwargs) -> serializers.ListField:
    code = serializers.CharField(min_length=9, max_length=9, help_text="xxxx-xxxx; case and dashes ignored.")
    return serializers.ListField(
        child=code, min_length=mfa.RECOVERY_CODE_COUNT, max_length=mfa.RECOVERY_CODE_COUNT, **kwargs
    )


class SignedInOutput(TokenPairOutput):
    user = UserOutput()


class SecondFactorSignedInOutput(SignedInOutput):
    recovery_codes = _recovery_codes(required=False, help_text="Only when this sign-in confirmed an enrolment.")


class TotpSecretOutput(serializers.Serializer):
    secret = serializers.CharField(min_length=32, max_length=32, help_text="The base32 shared secret.")
    otpauth_uri = serializers.CharField(help_text="The otpauth://totp/ URI, for a QR code.")


class RecoveryCodesOutput(serializers.Serializer):
    recovery_codes = _recovery_codes(help_text="Ten one-time codes, shown only now.")
