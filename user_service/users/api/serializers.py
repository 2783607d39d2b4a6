"""The user object of API.md, shared by every view that returns a user."""

from rest_framework import serializers

from users.models import User


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
