"""Which service a path belongs to, whether it needs a token, and refusing /internal/ in every disguise."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

PREFIXES = {"/api/user": "user", "/api/loan": "loan", "/api/notifications": "notification"}
# (method, path without trailing slash) that need no token.
PUBLIC = {
    ("POST", "/api/user/signup"),
    ("POST", "/api/user/login"),
    ("POST", "/api/user/login/mfa"),  # the second step of a sign-in: a challenge from the first, not a token
    ("POST", "/api/user/login/mfa/enrol"),  # a role that needs a second factor sets it up while signing in
    ("POST", "/api/user/token/refresh"),
    ("GET", "/api/user/.well-known/jwks.json"),
    ("HEAD", "/api/user/.well-known/jwks.json"),
}
LOGIN = "/api/user/login"
# Every public route of API.md, for metric labels: a {name} segment stands for a numeric id. Any other
# path, routed or not (a 404), is labelled "other", so no client can grow the metrics by inventing paths.
ROUTE_TEMPLATES = (
    *(
        f"/api/user/{rest}"
        for rest in (
            "signup",
            "login",
            "token/refresh",
            "logout",
            "profile",
            "change-password",
            "create-admin",
            "list-agents",
            "list-users",
            "list-approvals",
            "approve-delete/{user_id}",
            ".well-known/jwks.json",
            "login/mfa",
            "login/mfa/enrol",
            "mfa/totp",
            "mfa/totp/confirm",
            "mfa/totp/disable",
            "mfa/recovery-codes",
            "mfa/reset/{user_id}",
            "sessions",
            "sessions/{id}",
            "audit",
            "api-keys",
            "api-keys/{id}",
            "api-keys/{id}/rotate",
        )
    ),
    *(
        f"/api/loan/{rest}"
        for rest in (
            "customer-loan",
            "approve-reject-loan/{id}",
            "edit-loan/{id}",
            "list-loans-admin-agent",
            "list-loans-customer",
            "quote",
            "reports/portfolio",
            "reports/collections",
            "audit",
            "{id}",
            "{id}/schedule",
            "{id}/history",
            "{id}/disburse",
            "{id}/cancel",
            "{id}/write-off",
            "{id}/repayments",
            "{id}/transactions",
            "{id}/transactions/{transaction_id}/reverse",
            "{id}/instalments",
            "{id}/payoff",
            "{id}/statements",
        )
    ),
    "/api/notifications",
    *(f"/api/notifications/{rest}" for rest in ("send", "send-batch", "{id}", "{id}/read")),
)
OTHER_ROUTE = "other"


@dataclass(frozen=True)
class Route:
    upstream: str
    path: str  # decoded, for decisions and metrics; the raw path is what is forwarded
    public: bool

    @property
    def is_login(self) -> bool:
        return self.path.rstrip("/") == LOGIN


def decoded_path(raw_path: str) -> str | None:
    """The path percent-decoded until stable, or None when it is one we never forward.

    Refused: dot segments (`..`, `.`), empty segments (`//`), backslashes, NUL,
    and any `internal` segment, however it was encoded or decorated (`;params`,
    surrounding blanks, trailing dots, any case).
    """
    path = raw_path.split("?", 1)[0]
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return None  # still changing after four rounds: someone is hiding something
    if "\\" in path or "\x00" in path or not path.startswith("/"):
        return None
    segments = path.split("/")[1:]
    inner = segments[:-1] if segments and segments[-1] == "" else segments  # a trailing slash is fine
    if any(_bare(segment) in ("", ".", "..") for segment in inner):
        return None
    if any(_bare(segment).rstrip(".").lower() == "internal" for segment in segments):
        return None
    return path


def _bare(segment: str) -> str:
    """A segment without `;` path parameters or surrounding blanks, as some servers read it."""
    return segment.split(";", 1)[0].strip()


def route_for(method: str, raw_path: str) -> Route | None:
    """The route of a request, or None for 404 (unknown prefix, /internal/, or a disguised path)."""
    path = decoded_path(raw_path)
    if path is None:
        return None
    for prefix, upstream in PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return Route(upstream=upstream, path=path, public=(method, path.rstrip("/")) in PUBLIC)
    return None


def _segments_match(template: tuple[str, ...], segments: list[str]) -> bool:
    return len(template) == len(segments) and all(
        want == got or (want.startswith("{") and got.isascii() and got.isdigit())
        for want, got in zip(template, segments, strict=True)
    )


_TEMPLATES = [(template, tuple(template.split("/"))) for template in ROUTE_TEMPLATES]


@lru_cache(maxsize=4096)  # clients repeat paths; bounded, so invented ones cannot grow it
def metric_route(path: str) -> str:
    """The route template of API.md that `path` matches (`/api/loan/{id}/schedule`), else "other"."""
    segments = path.rstrip("/").split("/")
    return next((label for label, template in _TEMPLATES if _segments_match(template, segments)), OTHER_ROUTE)
