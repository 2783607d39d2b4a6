"""Small views that use `common` the way services do."""

import logging
import threading
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404
from django.urls import path
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from common.api import both_slashes, created, ok, validated
from common.audit.views import AuditListView
from common.errors import DomainError, InvalidInput, UpstreamUnavailable
from common.health import urlpatterns as health_urlpatterns
from common.http import ServiceClient
from common.idempotency.models import IdempotencyKey
from common.outbox.models import OutboxMessage
from common.pagination import paginate
from common.permissions import HasServiceKey, IsAdmin, IsAdminOrApprovedAgent, IsAgent, IsApprovedAgent, IsCustomer

logger = logging.getLogger("lms.tests")


class EchoView(APIView):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=1)

    def post(self, request):
        amount = validated(self.InputSerializer, request.data)["amount"]
        if amount == 13:
            raise InvalidInput.on("amount", "Unlucky.")
        logger.info("echoed", extra={"amount": str(amount)})
        return ok({"amount": amount})


class LineSerializer(serializers.Serializer):
    sku = serializers.CharField()


class AddressSerializer(serializers.Serializer):
    city = serializers.CharField()


class NestedView(APIView):
    """Nested serializers, so DRF reports errors as nested dicts and lists of dicts."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        address = AddressSerializer()
        lines = LineSerializer(many=True)

    def post(self, request):
        validated(self.InputSerializer, request.data)
        return ok({})


class LoanLocked(DomainError):
    status_code = 409
    code = "loan_not_editable"
    default_message = "An approved loan cannot be edited."


class Teapot(exceptions.APIException):
    status_code = 418
    default_code = "teapot"
    default_detail = "I am a teapot."


RAISED = {
    "parse": lambda: exceptions.ParseError(),
    "authentication-failed": lambda: exceptions.AuthenticationFailed("Nope."),
    "not-authenticated": lambda: exceptions.NotAuthenticated(),
    "permission-denied": lambda: exceptions.PermissionDenied(),
    "drf-not-found": lambda: exceptions.NotFound(),
    "http404": lambda: Http404("no such loan 12 in table loans_loan"),
    "django-permission-denied": lambda: DjangoPermissionDenied("internal reason"),
    "throttled": lambda: exceptions.Throttled(wait=3.2),
    "unsupported-media": lambda: exceptions.UnsupportedMediaType("text/csv"),
    "not-acceptable": lambda: exceptions.NotAcceptable(),
    "non-field-validation": lambda: exceptions.ValidationError("Dates are in the wrong order."),
    "other-api-exception": lambda: Teapot(),
    "domain": lambda: LoanLocked(),
    "database-down": lambda: OperationalError("could not connect to server at 10.0.0.5"),
    "data-too-big": lambda: RequestDataTooBig(),
}


class RaiseView(APIView):
    permission_classes = [AllowAny]

    def get(self, request, kind: str):
        raise RAISED[kind]()


class BoomView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internals")


def plain_boom(request):
    raise RuntimeError("secret internals of a plain view")


def plain_forbidden(request):
    raise DjangoPermissionDenied("internal reason")


def plain_suspicious(request):
    raise SuspiciousOperation("tampered cookie for user 5")


NUMBERS = "numbers"  # the scope of the IdempotencyKey rows the list views below page through
KEY_ORDERINGS = {
    "newest": ["-created_at"],
    "oldest": ["created_at"],
    "fingerprint": ["fingerprint"],
    "mixed": ["-fingerprint", "created_at"],
    "scope-key": ["scope", "key"],  # unique together, but neither column alone: the id still ends it
}


class NumbersView(APIView):
    """Rows in id order; each shows as its key (the tests write 1, 2, 3... in id order)."""

    permission_classes = [AllowAny]

    def get(self, request):
        rows = IdempotencyKey.objects.filter(scope=NUMBERS).order_by("id")
        return ok(paginate(rows, request.query_params, lambda page: [int(row.key) for row in page]))


class KeysView(APIView):
    """The same rows in one of KEY_ORDERINGS (`?ordering=`), filtered by `?status=`; each shows as its id."""

    permission_classes = [AllowAny]

    def get(self, request):
        rows = IdempotencyKey.objects.filter(scope=NUMBERS).order_by(
            *KEY_ORDERINGS[request.GET.get("ordering", "newest")]
        )
        if request.GET.get("status"):
            rows = rows.filter(status=request.GET["status"])
        return ok(paginate(rows, request.query_params, lambda page: [row.id for row in page]))


class OutboxPageView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        rows = OutboxMessage.objects.order_by("created_at", "event_id")
        return ok(paginate(rows, request.query_params, lambda page: [str(row.event_id) for row in page]))


def role_view(*permissions):
    class RoleView(APIView):
        permission_classes = list(permissions)

        def get(self, request):
            user = request.user
            return ok({"user_id": user.id, "role": user.role, "is_approved": user.is_approved})

    return RoleView.as_view()


class DefaultsView(APIView):
    """No permission_classes of its own: the shared DRF defaults apply."""

    def get(self, request):
        return ok({"price": serializers.DecimalField(max_digits=6, decimal_places=2).to_representation("12.5")})


class ThrottledView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tiny"

    def get(self, request):
        return ok({})


class PerClientThrottle(SimpleRateThrottle):
    rate = "5/min"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": "per-client", "ident": self.get_ident(request)}


class TwoThrottlesView(APIView):
    """A roomy throttle and a tight one: the tight one refuses first."""

    permission_classes = [AllowAny]
    throttle_classes = [PerClientThrottle, ScopedRateThrottle]
    throttle_scope = "tiny"

    def get(self, request):
        return ok({})


class InternalView(APIView):
    authentication_classes = []  # service-to-service: the key, not a user token
    permission_classes = [HasServiceKey]

    def get(self, request):
        return ok({})


class UpstreamView(APIView):
    """Asks another service, the way loan_service asks user_service."""

    permission_classes = [AllowAny]

    def get(self, request):
        client = ServiceClient(settings.UPSTREAM_URL, service_name="upstream", read_timeout=0.3, max_retries=0)
        reply = client.get_json("/api/thing")
        return ok({"upstream_status": reply.status, "upstream": reply.data})


WORK = "test.work"  # the outbox rows the views below write: one per run that was kept


def do_work(request) -> str:
    """The observable effect of a write: an outbox row a test can count."""
    row = OutboxMessage.objects.create(event_id=uuid.uuid4(), name=WORK, message={"body": request.data})
    return str(row.event_id)


class WorkView(APIView):
    """Does work once per run; a test can hold a run inside the view with `hold` (and learn when it got there)."""

    permission_classes = [AllowAny]
    hold: threading.Event | None = None
    inside = threading.Event()

    def post(self, request):
        work_id = do_work(request)
        hold, WorkView.hold = WorkView.hold, None  # only the first run that gets here is held
        WorkView.inside.set()
        if hold is not None:
            hold.wait(timeout=30)
        caller = getattr(request.user, "id", None)
        return created({"work_id": work_id, "caller": caller, "body": request.data})


class RequiredWorkView(WorkView):
    idempotency = "required"


class AdminRequiredWorkView(WorkView):
    permission_classes = [IsAdmin]
    idempotency = "required"


class ExemptWorkView(WorkView):
    idempotency = "exempt"


class RefusingWorkView(APIView):
    """Works, then answers a 4xx: a reply like any other, kept and replayed."""

    permission_classes = [AllowAny]

    def post(self, request):
        do_work(request)
        raise LoanLocked()


class FailingWorkView(APIView):
    """Works, then answers `status` (503 or 429): nothing of the run may stay. `runs` counts attempts."""

    permission_classes = [AllowAny]
    runs = 0

    def post(self, request, status: int):
        FailingWorkView.runs += 1
        do_work(request)
        if status == 429:
            raise exceptions.Throttled(wait=1)
        raise UpstreamUnavailable()


class CrashingWorkView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        do_work(request)
        raise RuntimeError("crashed after writing")


urlpatterns = [
    path("work", WorkView.as_view()),
    path("work/required", RequiredWorkView.as_view()),
    path("work/required/admin", AdminRequiredWorkView.as_view()),
    path("work/exempt", ExemptWorkView.as_view()),
    path("work/refused", RefusingWorkView.as_view()),
    path("work/fails/<int:status>", FailingWorkView.as_view()),
    path("work/crashes", CrashingWorkView.as_view()),
    *both_slashes("echo", EchoView.as_view()),
    path("nested", NestedView.as_view()),
    path("raise/<str:kind>", RaiseView.as_view()),
    path("boom", BoomView.as_view()),
    path("plain/boom", plain_boom),
    path("plain/forbidden", plain_forbidden),
    path("plain/suspicious", plain_suspicious),
    path("numbers", NumbersView.as_view()),
    path("outbox-page", OutboxPageView.as_view()),
    path("keys", KeysView.as_view()),
    path("customer", role_view(IsCustomer)),
    path("agent", role_view(IsAgent)),
    path("approved-agent", role_view(IsApprovedAgent)),
    path("admin-only", role_view(IsAdmin)),
    path("staff", role_view(IsAdminOrApprovedAgent)),
    path("defaults", DefaultsView.as_view()),
    path("throttled", ThrottledView.as_view()),
    path("two-throttles", TwoThrottlesView.as_view()),
    path("internal", InternalView.as_view()),
    path("upstream", UpstreamView.as_view()),
    path("audit", AuditListView.as_view()),
    *health_urlpatterns,
]

handler400 = "common.errors.handler400"
handler403 = "common.errors.handler403"
handler404 = "common.errors.handler404"
handler500 = "common.errors.handler500"
