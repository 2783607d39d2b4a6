"""user_service's public API (API.md, "Users"): thin views over users.services and users.selectors."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import created, ok, validated
from common.pagination import PageOutput, PageParams, paginate
from common.permissions import IsAdmin, IsAdminOrApprovedAgent
from users import selectors, services
from users.api.serializers import UserOutput, user_data, users_data
from users.models import Role
from users.throttles import LoginPerEmailThrottle, LoginPerIPThrottle
from users.tokens import jwks_document

NAME_MAX = 150


class SignupView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        first_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")
        last_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")
        role = serializers.ChoiceField(choices=[Role.CUSTOMER, Role.AGENT])

    @extend_schema(request=InputSerializer, responses={201: UserOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return created(user_data(services.register_user(**data)))


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginPerIPThrottle, LoginPerEmailThrottle]
    idempotency = "exempt"  # the reply carries tokens: never stored for an Idempotency-Key to replay

    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer)
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        user = services.authenticate(**data)
        return ok({**services.issue_tokens(user), "user": user_data(user)})


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class TokenRefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    idempotency = "exempt"  # the reply carries tokens

    @extend_schema(request=RefreshInput)
    def post(self, request):
        data = validated(RefreshInput, request.data)
        return ok(services.refresh_tokens(refresh=data["refresh"]))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]
    idempotency = "exempt"  # token handling is never replayed: a second logout is told the token is revoked

    @extend_schema(request=RefreshInput)
    def post(self, request):
        data = validated(RefreshInput, request.data)
        services.logout(user=request.user, refresh=data["refresh"])
        return ok({"logged_out": True})


class ProfileView(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        first_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, required=False)
        last_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, required=False)

    @extend_schema(responses=UserOutput)
    def get(self, request):
        return ok(user_data(request.user))

    @extend_schema(request=InputSerializer, responses=UserOutput)
    def put(self, request):
        data = validated(self.InputSerializer, request.data)
        return ok(user_data(services.update_profile(user=request.user, **data)))


class ChangePasswordView(APIView):
    permission_classes = [IsAuthenticated]
    idempotency = "exempt"  # credentials are checked on every attempt, never answered from storage

    class InputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=128, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer)
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        services.change_password(user=request.user, **data)
        return ok({"password_changed": True})


class CreateAdminView(APIView):
    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        first_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")
        last_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={201: UserOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return created(user_data(services.create_admin(**data)))


class UserPageOutput(PageOutput):
    results = UserOutput(many=True)


class ListCustomersView(APIView):
    """`list-agents` in API.md: the customers an agent can request a loan for."""

    permission_classes = [IsAdminOrApprovedAgent]

    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(max_length=100, required=False, default="")

    @extend_schema(parameters=[FilterSerializer, PageParams], responses=UserPageOutput)
    def get(self, request):
        filters = validated(self.FilterSerializer, request.query_params)
        return ok(paginate(selectors.list_customers(**filters), request.query_params, users_data))


class ListUsersView(APIView):
    permission_classes = [IsAdmin]

    class FilterSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.values, required=False, default="")
        is_approved = serializers.BooleanField(required=False, allow_null=True, default=None)
        search = serializers.CharField(max_length=100, required=False, default="")

    @extend_schema(parameters=[FilterSerializer, PageParams], responses=UserPageOutput)
    def get(self, request):
        filters = validated(self.FilterSerializer, request.query_params)
        return ok(paginate(selectors.list_users(**filters), request.query_params, users_data))


class ListApprovalsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(parameters=[PageParams], responses=UserPageOutput)
    def get(self, request):
        return ok(paginate(selectors.list_agents_awaiting_approval(), request.query_params, users_data))


class ApproveDeleteAgentView(APIView):
    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["approve", "reject"])

    @extend_schema(request=InputSerializer, responses=UserOutput)
    def put(self, request, user_id: int):
        data = validated(self.InputSerializer, request.data)
        agent = services.decide_agent(user_id=user_id, admin_id=request.user.id, approve=data["action"] == "approve")
        return ok(user_data(agent))

    def delete(self, request, user_id: int):
        services.delete_agent(user_id=user_id)
        return Response(status=204)


class JwksView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        # RFC 7517's bare key set, not the envelope: every JWKS client expects this shape.
        return Response(jwks_document(), headers={"Cache-Control": "public, max-age=300"})
