"""Service-to-service endpoints under /internal/: a service key, never routed by the gateway."""

from rest_framework import serializers
from rest_framework.views import APIView

from common.api import ok
from common.permissions import HasServiceKey
from users import selectors
from users.models import User


class InternalUserView(APIView):
    """What another service may know of a user: enough to check a customer id."""

    authentication_classes = []
    permission_classes = [HasServiceKey]

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = User
            fields = ["id", "role", "is_active", "email"]

    def get(self, request, user_id: int):
        return ok(self.OutputSerializer(selectors.get_user(user_id)).data)
