"""Success envelopes, pagination and URL helpers shared by every service's API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response

# The largest 64-bit signed integer (a BigIntegerField, an SQL offset): an id above it is no row or user of ours.
MAX_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_OFFSET = MAX_ID - MAX_PAGE_SIZE  # SQL offsets are 64-bit: a page beyond cannot hold rows


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


class PageParams(serializers.Serializer):
    """`?page=` from 1 and `?page_size=` (default 20; larger than 100 is clamped)."""

    page = serializers.IntegerField(min_value=1, default=1)
    page_size = serializers.IntegerField(min_value=1, default=DEFAULT_PAGE_SIZE)

    def validate_page_size(self, value: int) -> int:
        return min(value, MAX_PAGE_SIZE)


def validated(serializer_class, data) -> dict:
    """`data` as a new `serializer_class` validates it; invalid data raises a 400 naming each bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def page_params(query_params) -> tuple[int, int]:
    """Validated (page, page_size) from a request's query; bad values raise a 400."""
    params = validated(PageParams, {key: query_params[key] for key in ("page", "page_size") if key in query_params})
    return params["page"], params["page_size"]


def paginate(queryset, query_params, to_data: Callable[[Iterable], list]) -> dict:
    """One page of `queryset` in the API.md page shape.

    Two queries whatever the page size: the slice (one row more, to know whether
    a next page exists) and a COUNT. The slice is read whatever the count says,
    so a count kept apart from the rows (loan_service's status counts) can lag
    without hiding rows, and the count is never less than the rows seen. A page
    past the end is an empty page, not an error.
    """
    page, page_size = page_params(query_params)
    offset = (page - 1) * page_size
    rows = list(queryset[offset : offset + page_size + 1]) if offset <= MAX_OFFSET else []
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    seen = offset + len(rows) + has_next if rows else 0
    return {
        "count": max(queryset.count(), seen),
        "page": page,
        "page_size": page_size,
        "next": page + 1 if has_next else None,
        "previous": page - 1 if page > 1 else None,
        "results": to_data(rows),
    }
