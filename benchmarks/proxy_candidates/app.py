"""Bare Django Ninja proxy views, one per candidate client, for benchmarks/gateway_overhead.py.

Only the forwarding differs between them (no edge features), so the serving
model and HTTP client can be compared on their own:
  /sync-urllib3/{path}  sync view, one pooled urllib3 pool (WSGI: gunicorn or granian)
  /sync-httptools/{path} sync view, the gateway's own exchange: kept-alive sockets, httptools parsing
                        (gateway.connections; WSGI)
  /async-httpx/{path}   async view, one httpx.AsyncClient   (ASGI: uvicorn)
  /async-aiohttp/{path} async view, one aiohttp session      (ASGI: uvicorn)
UPSTREAM (env) is the base URL forwarded to.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django
from django.conf import settings

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8001")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "gateway_project"))  # gateway.connections

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["ninja"],
        MIDDLEWARE=[],
        SECRET_KEY="benchmark-only",
    )
    django.setup()

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import urllib3  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI  # noqa: E402

from gateway.connections import ConnectionPool  # noqa: E402

api = NinjaAPI(docs_url=None, openapi_url=None)
_pool = urllib3.PoolManager(maxsize=32)
_address = urllib3.util.parse_url(UPSTREAM)
_connections = ConnectionPool(_address.scheme, _address.host, _address.port, maxsize=32)
_httpx: httpx.AsyncClient | None = None
_aiohttp: aiohttp.ClientSession | None = None


def _headers(request) -> dict[str, str]:
    return {"Authorization": request.headers.get("Authorization", "")}


@api.get("/sync-urllib3/{path:rest}")
def sync_urllib3(request, rest: str):
    response = _pool.request(
        "GET", f"{UPSTREAM}/{rest}?{request.META.get('QUERY_STRING', '')}", headers=_headers(request)
    )
    return HttpResponse(response.data, status=response.status, content_type="application/json")


@api.get("/sync-httptools/{path:rest}")
def sync_httptools(request, rest: str):
    target = f"/{rest}?{request.META.get('QUERY_STRING', '')}"
    answer = _connections.exchange(
        "GET", target, headers=_headers(request), body=None, connect=1.0, read=10.0, until=time.monotonic() + 15
    )
    return HttpResponse(answer.body, status=answer.status, content_type="application/json")


@api.get("/async-httpx/{path:rest}")
async def async_httpx(request, rest: str):
    global _httpx
    _httpx = _httpx or httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=32))
    response = await _httpx.get(f"{UPSTREAM}/{rest}?{request.META.get('QUERY_STRING', '')}", headers=_headers(request))
    return HttpResponse(response.content, status=response.status_code, content_type="application/json")


@api.get("/async-aiohttp/{path:rest}")
async def async_aiohttp(request, rest: str):
    global _aiohttp
    _aiohttp = _aiohttp or aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
    async with _aiohttp.get(
        f"{UPSTREAM}/{rest}?{request.META.get('QUERY_STRING', '')}", headers=_headers(request)
    ) as response:
        body = await response.read()
    return HttpResponse(body, status=response.status, content_type="application/json")


urlpatterns = [path("", api.urls)]

if "uvicorn" in sys.modules or os.environ.get("PROXY_INTERFACE") == "asgi":
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
else:
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
