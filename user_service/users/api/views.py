"""user_service's public API (API.md, "Users"): thin views over users.services and users.selectors."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import created, ok, validated
from common.envelope_schema import NOT_ENVELOPED
from common.pagination import PageOutput, PageParams, paginate
from common.permissions import IsAdmin, IsAdminOrApprovedAgent
from users import factors, selectors, services, signin
from users.api.serializers import (
    RecoveryCodesOutput,
    SecondFactorSignedInOutput,
    SessionOutput,
    SignedInOutput,
    TokenPairOutput,
    TotpSecretOutput,
    UserOutput,
    sessions_data,
    user_data,
    users_data,
)
from users.models import Role
from users.throttles import (
    LoginPerEmailThrottle,
    LoginPerIPThrottle,
    SecondFactorPerEmailThrottle,
    SignedInCodePerEmailThrottle,
)
from users.tokens import jwks_document

NAME_MAX = 150


class SignupView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema_serializer(component_name="SignupInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        first_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")
        last_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")
        role = serializers.ChoiceField(choices=[Role.CUSTOMER, Role.AGENT])

    @extend_schema(request=InputSerializer, responses={201: UserOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return created(user_data(services.register_user(**data, request=request)))


def signed_in(result: dict):
    """A sign-in's answer: the tokens and the user, or the second step's challenge as it is."""
    if "user" in result:
        return ok({**result, "user": user_data(result["user"])})
    return ok(result)


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginPerIPThrottle, LoginPerEmailThrottle]
    idempotency = "exempt"  # the reply carries tokens: never stored for an Idempotency-Key to replay

    @extend_schema_serializer(component_name="LoginInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema_serializer(component_name="MfaRequiredOutput")
    class MfaRequiredSerializer(serializers.Serializer):
        mfa_required = serializers.BooleanField(help_text="Always true: send a code to /login/mfa.")
        challenge = serializers.CharField(help_text="For /login/mfa; not a token.")
        expires_in = serializers.IntegerField(help_text="Seconds the challenge stays valid (MFA_CHALLENGE_SECONDS).")
        methods = serializers.ListField(child=serializers.ChoiceField(choices=signin.METHODS))

    @extend_schema_serializer(component_name="MfaEnrolmentRequiredOutput")
    class MfaEnrolmentRequiredSerializer(serializers.Serializer):
        mfa_enrolment_required = serializers.BooleanField(help_text="Always true: set a factor up at /login/mfa/enrol.")
        challenge = serializers.CharField(help_text="For /login/mfa/enrol, then /login/mfa; not a token.")
        expires_in = serializers.IntegerField(help_text="Seconds the challenge stays valid (MFA_CHALLENGE_SECONDS).")

    OutputSerializer = PolymorphicProxySerializer(
        component_name="LoginOutput",
        serializers=[SignedInOutput, MfaRequiredSerializer, MfaEnrolmentRequiredSerializer],
        resource_type_field_name=None,
    )

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return signed_in(signin.sign_in(**data, request=request))


class ChallengeInput(serializers.Serializer):
    challenge = serializers.CharField(max_length=128)


class CodeInput(serializers.Serializer):
    code = serializers.CharField(max_length=32, help_text="A 6-digit TOTP code or a recovery code (xxxx-xxxx).")


class LoginSecondFactorView(APIView):
    """The second step of a sign-in: the challenge from POST /login and a code."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginPerIPThrottle, SecondFactorPerEmailThrottle]
    idempotency = "exempt"  # the reply carries tokens

    @extend_schema_serializer(component_name="SecondFactorInput")
    class InputSerializer(ChallengeInput, CodeInput):
        pass

    @extend_schema(request=InputSerializer, responses={200: SecondFactorSignedInOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return signed_in(signin.verify_second_factor(**data, request=request))


class LoginEnrolView(APIView):
    """A role that needs a second factor sets it up while signing in, with the `enrol` challenge."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginPerIPThrottle, SecondFactorPerEmailThrottle]
    idempotency = "exempt"  # the reply carries a secret

    @extend_schema(request=ChallengeInput, responses={200: TotpSecretOutput})
    def post(self, request):
        data = validated(ChallengeInput, request.data)
        return ok(signin.enrol_while_signing_in(**data))


class TotpView(APIView):
    """Set up a TOTP authenticator: a secret now, turned on by POST /mfa/totp/confirm with a first code."""

    permission_classes = [IsAuthenticated]
    idempotency = "exempt"  # the reply carries a secret

    @extend_schema(request=None, responses={201: TotpSecretOutput})
    def post(self, request):
        return created(factors.start_enrolment(request.user))


class TotpConfirmView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [LoginPerIPThrottle, SignedInCodePerEmailThrottle]
    idempotency = "exempt"  # the reply carries the recovery codes

    @extend_schema(request=CodeInput, responses={200: RecoveryCodesOutput})
    def post(self, request):
        data = validated(CodeInput, request.data)
        return ok({"recovery_codes": factors.confirm_enrolment(request.user, data["code"], request=request)})


class TotpDisableView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [LoginPerIPThrottle, SignedInCodePerEmailThrottle]
    idempotency = "exempt"  # credentials are checked on every attempt

    @extend_schema_serializer(component_name="TotpDisableInput")
    class InputSerializer(CodeInput):
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema_serializer(component_name="TotpDisabledOutput")
    class OutputSerializer(serializers.Serializer):
        mfa_enabled = serializers.BooleanField(help_text="Always false.")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        factors.disable(request.user, password=data["password"], code=data["code"], request=request)
        return ok({"mfa_enabled": False})


class RecoveryCodesView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [LoginPerIPThrottle, SignedInCodePerEmailThrottle]
    idempotency = "exempt"  # the reply carries the recovery codes

    @extend_schema(request=CodeInput, responses={200: RecoveryCodesOutput})
    def post(self, request):
        data = validated(CodeInput, request.data)
        codes = factors.regenerate_recovery_codes(request.user, code=data["code"], request=request)
        return ok({"recovery_codes": codes})


class MfaResetView(APIView):
    """An admin removes a user's second factor (a lost phone); audited."""

    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="MfaResetOutput")
    class OutputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField()
        mfa_enabled = serializers.BooleanField(help_text="Always false.")

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request, user_id: int):
        user = factors.reset(user_id=user_id, admin=request.user, request=request)
        return ok({"user_id": user.id, "mfa_enabled": False})


class SessionPageOutput(PageOutput):
    results = SessionOutput(many=True)


def _current_session(request) -> str | None:
    return request.auth.get("sid") if request.auth is not None else None


class SessionsView(APIView):
    """The caller's signed-in devices; DELETE signs out every one but this one."""

    permission_classes = [IsAuthenticated]
    idempotency = "exempt"  # a second sign-out of the others finds none: the answer says so

    @extend_schema_serializer(component_name="SessionsEndedOutput")
    class EndedSerializer(serializers.Serializer):
        ended = serializers.IntegerField(min_value=0, help_text="How many other sessions this ended.")

    @extend_schema(parameters=[PageParams], responses=SessionPageOutput)
    def get(self, request):
        current = _current_session(request)
        sessions = services.active_sessions(request.user)
        return ok(paginate(sessions, request.query_params, lambda rows: sessions_data(rows, current=current)))

    @extend_schema(request=None, responses={200: EndedSerializer})
    def delete(self, request):
        ended = services.sign_out_other_sessions(user=request.user, keep=_current_session(request), request=request)
        return ok({"ended": ended})


class SessionDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, session_id):
        services.sign_out_session(user=request.user, session_id=session_id, request=request)
        return Response(status=204)


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class TokenRefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    idempotency = "exempt"  # the reply carries tokens

    @extend_schema(request=RefreshInput, responses={200: TokenPairOutput})
    def post(self, request):
        data = validated(RefreshInput, request.data)
        return ok(signin.refresh(refresh=data["refresh"], request=request))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]
    idempotency = "exempt"  # token handling is never replayed: a second logout is told the token is revoked

    @extend_schema_serializer(component_name="LoggedOutOutput")
    class OutputSerializer(serializers.Serializer):
        logged_out = serializers.BooleanField(help_text="Always true.")

    @extend_schema(request=RefreshInput, responses={200: OutputSerializer})
    def post(self, request):
        data = validated(RefreshInput, request.data)
        services.logout(user=request.user, refresh=data["refresh"], request=request)
        return ok({"logged_out": True})


class ProfileView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="ProfileInput")
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

    @extend_schema_serializer(component_name="ChangePasswordInput")
    class InputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=128, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema_serializer(component_name="PasswordChangedOutput")
    class OutputSerializer(serializers.Serializer):
        password_changed = serializers.BooleanField(help_text="Always true.")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        services.change_password(user=request.user, **data, request=request)
        return ok({"password_changed": True})


class CreateAdminView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="CreateAdminInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        first_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")
        last_name = serializers.CharField(max_length=NAME_MAX, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={201: UserOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return created(user_data(services.create_admin(**data, created_by=request.user.id, request=request)))


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
        role = serializers.ChoiceField(choices=Role.values, required=False)  # absent: every role
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

    @extend_schema_serializer(component_name="AgentDecisionInput")
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["approve", "reject"])

    @extend_schema(request=InputSerializer, responses=UserOutput)
    def put(self, request, user_id: int):
        data = validated(self.InputSerializer, request.data)
        approve = data["action"] == "approve"
        agent = services.decide_agent(user_id=user_id, admin_id=request.user.id, approve=approve, request=request)
        return ok(user_data(agent))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, user_id: int):
        services.delete_agent(user_id=user_id, admin_id=request.user.id, request=request)
        return Response(status=204)


class JwksView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="RFC 7517's JSON Web Key Set.")},
        extensions={NOT_ENVELOPED: True},
    )
    def get(self, request):
        # RFC 7517's bare key set, not the envelope: every JWKS client expects this shape.
        return Response(jwks_document(), headers={"Cache-Control": "public, max-age=300"})
