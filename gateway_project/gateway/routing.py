"""Which service a path belongs to, whether it needs a token, and refusing /internal/ in every disguise."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

PREFIXES = {"/api/user": "user", "/api/loan": "loan", "/api/notifications": "notification"}
# (method, path without trailing slash) that need no token.
PUBLIC = {
    ("POST", "/api/user/signup"),
    ("POST", "/api/user/login"),
    ("POST", "/api/user/token/refresh"),
    ("GET", "/api/user/.well-known/jwks.json"),
    ("HEAD", "/api/user/.well-known/jwks.json"),
}
LOGIN = "/api/user/login"


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
    and any `internal` segment, however it was encoded.
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
    if any(segment in ("", ".", "..") for segment in inner):
        return None
    if any(segment.strip().lower() == "internal" for segment in segments):
        return None
    return path


def route_for(method: str, raw_path: str) -> Route | None:
    """The route of a request, or None for 404 (unknown prefix, /internal/, or a disguised path)."""
    path = decoded_path(raw_path)
    if path is None:
        return None
    for prefix, upstream in PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return Route(upstream=upstream, path=path, public=(method, path.rstrip("/")) in PUBLIC)
    return None


def metric_route(path: str) -> str:
    """A low-cardinality label: numeric segments become {id}."""
    return "/".join("{id}" if segment.isdigit() else segment for segment in path.rstrip("/").split("/")) or "/"
