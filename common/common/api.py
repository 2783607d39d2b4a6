"""Success envelopes, input validation and URL helpers shared by every service's API (pages: common.pagination)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.response import Response

# The largest 64-bit signed integer (a BigIntegerField): an id above it is no row or user of ours.
MAX_ID = 2**63 - 1
# Django's portable ranges of its positive integer fields, for a serializer to state: DRF reads a model field's
# bounds from the database connection (SQLite: none, PostgreSQL: the column's), and a service's OpenAPI
# document must be the same whatever database generated it.
POSITIVE_INT_MAX = 2_147_483_647
POSITIVE_SMALL_INT_MAX = 32_767


def ok(data: Any, status: int = 200) -> Response:
    """The success envelope."""
    return Response({"success": True, "data": data}, status=status)


def created(data: Any) -> Response:
    """201 with the created resource."""
    return ok(data, status=201)


def accepted(data: Any) -> Response:
    """202: queued, not yet done."""
    return ok(data, status=202)


def both_slashes(route: str, view, name: str | None = None) -> list:
    """URL patterns for `route` with and without a trailing slash (API.md: both work)."""
    route = route.rstrip("/")
    return [path(route, view, name=name), path(f"{route}/", view)]


def validated(serializer_class, data) -> dict:
    """`data` as a new `serializer_class` validates it; invalid data raises a 400 naming each bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
