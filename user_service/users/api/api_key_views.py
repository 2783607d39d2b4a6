"""Admins' API keys (API.md, "API keys"), and the gateway's exchange of a key for a token under /internal/."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from common import scopes
from common.api import created, ok, validated
from common.pagination import PageOutput, PageParams, paginate
from common.permissions import IsAdmin
from users import api_keys, selectors
from users.models import ApiKey


class ApiKeyOutput(serializers.ModelSerializer):
    owner_id = serializers.IntegerField(read_only=True)
    prefix = serializers.SerializerMethodField(help_text="What the key starts with, to recognise it.")
    is_revoked = serializers.BooleanField(read_only=True)
    replaced_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)  # the key a rotation made

    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "owner_id", "prefix", "scopes", "rate_limit", "expires_at", "created_at",
            "last_used_at", "is_revoked", "revoked_at", "replaced_by",
        ]  # fmt: skip
        read_only_fields = fields

    def get_prefix(self, api_key: ApiKey) -> str:
        return f"{api_keys.KEY_START}{api_key.prefix}_"


class MadeKeyOutput(ApiKeyOutput):
    key = serializers.CharField(read_only=True, help_text="The whole key: shown this once, never again.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]
        read_only_fields = fields


def made_data(made: api_keys.MadeKey) -> dict:
    return {**ApiKeyOutput(made.api_key).data, "key": made.key}


class ApiKeyPageOutput(PageOutput):
    results = ApiKeyOutput(many=True)


class ApiKeysView(APIView):
    """GET: every key, newest first (?owner_id=, ?revoked=); POST: a new key, its secret in this reply only."""

    permission_classes = [IsAdmin]
    idempotency = "exempt"  # the reply carries the key's secret: never stored for an Idempotency-Key to replay

    @extend_schema_serializer(component_name="ApiKeyInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        owner_id = serializers.IntegerField(min_value=1)
        scopes = serializers.ListField(child=serializers.ChoiceField(choices=scopes.ALL), min_length=1, max_length=20)
        expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        rate_limit = serializers.IntegerField(min_value=1, max_value=100_000, required=False, allow_null=True)

    class FilterSerializer(serializers.Serializer):
        owner_id = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
        revoked = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(parameters=[FilterSerializer, PageParams], responses=ApiKeyPageOutput)
    def get(self, request):
        filters = validated(self.FilterSerializer, request.query_params)
        keys = selectors.list_api_keys(**filters)
        return ok(paginate(keys, request.query_params, lambda rows: ApiKeyOutput(rows, many=True).data))

    @extend_schema(request=InputSerializer, responses={201: MadeKeyOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        return created(made_data(api_keys.create(**data, admin_id=request.user.id, request=request)))


class ApiKeyDetailView(APIView):
    """GET: one key; DELETE: revoke it (again: the same answer)."""

    permission_classes = [IsAdmin]

    @extend_schema(responses=ApiKeyOutput)
    def get(self, request, api_key_id: int):
        return ok(ApiKeyOutput(selectors.get_api_key(api_key_id)).data)

    @extend_schema(responses=ApiKeyOutput)
    def delete(self, request, api_key_id: int):
        revoked = api_keys.revoke(api_key_id=api_key_id, admin_id=request.user.id, request=request)
        return ok(ApiKeyOutput(revoked).data)


class RotateApiKeyView(APIView):
    """A new key in place of this one, which is revoked at once; the new secret in this reply only."""

    permission_classes = [IsAdmin]
    idempotency = "exempt"  # the reply carries the new secret

    @extend_schema(request=None, responses={201: MadeKeyOutput})
    def post(self, request, api_key_id: int):
        return created(made_data(api_keys.rotate(api_key_id=api_key_id, admin_id=request.user.id, request=request)))


class ExchangeApiKeyView(APIView):
    """POST /internal/api-keys/exchange with X-API-Key: a short-lived access token for the key (the gateway's).

    The key is the credential: it buys nothing here that it does not buy through the gateway, so the gateway
    needs no SERVICE_KEY; /internal/ is never routed from outside.
    """

    authentication_classes = []
    permission_classes = []
    idempotency = "exempt"  # the reply carries a token

    @extend_schema_serializer(component_name="ExchangedKeyOutput")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ExchangedKey")
        class KeySerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField(max_length=100)
            owner_id = serializers.IntegerField()
            scopes = serializers.ListField(child=serializers.ChoiceField(choices=scopes.ALL))
            rate_limit = serializers.IntegerField(min_value=1, help_text="Requests a minute through the gateway.")

        access = serializers.CharField(help_text="An access token for the key's owner, with the key's scopes.")
        expires_in = serializers.IntegerField(help_text="Seconds until it expires; never after the key.")
        api_key = KeySerializer()

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("X-API-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True)],
        responses={200: OutputSerializer},
    )
    def post(self, request):
        return ok(api_keys.exchange(request.META.get("HTTP_X_API_KEY", "")))
