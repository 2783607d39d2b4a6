"""Service-to-service endpoints under /internal/: a service key, never routed by the gateway."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from common.api import ok
from common.permissions import HasServiceKey
from users import selectors
from users.models import User


class InternalUserView(APIView):
    """What another service may know of a user: enough to check a customer id, or re-check an admin.

    Inactive users are answered too (is_active false, with their role), not 404: loan_service's and
    notification_service's admin sites re-check their signed-in admins here (common.admin_sso) and must tell
    "deactivated" (sign the admin out) from "gone" (404 user_not_found, also out) and "no answer" (fail closed).
    """

    authentication_classes = []
    permission_classes = [HasServiceKey]

    @extend_schema_serializer(component_name="InternalUserOutput")
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = User
            fields = ["id", "role", "is_active", "email"]
            read_only_fields = fields

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, user_id: int):
        return ok(self.OutputSerializer(selectors.get_user(user_id)).data)
