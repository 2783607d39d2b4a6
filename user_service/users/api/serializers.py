"""The user and session objects of API.md, shared by every view that returns them."""

from rest_framework import serializers

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
