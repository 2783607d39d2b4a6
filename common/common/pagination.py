"""Lists as pages (API.md, "Lists are pages"): page numbers for the first rows, keyset cursors at any depth.

Every page carries `next_cursor`: the ordering key of its last row (the list's own ordering, made to
end with a unique column) as JSON in URL-safe base64, signed with the service's SECRET_KEY for that
model and ordering, so a client can neither forge nor edit one, and a cursor of another list or
ordering is a 400. `?cursor=` reads the rows after that key through the ordering's index, with no
OFFSET: the last page costs what the first costs, and rows inserted or deleted during a walk neither
repeat nor skip the others. Page numbers (OFFSET) stop at MAX_PAGE_DEPTH rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, Model, Q, QuerySet
from rest_framework import serializers

from common.django_settings import DEFAULT_MAX_PAGE_DEPTH
from common.errors import InvalidInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 512  # ours are about 110 characters; anything longer is not one
CURSOR_SALT = "lms.pagination.cursor.v1"
BAD_CURSOR = "Not a cursor of this list: pass a page's next_cursor unchanged, or start again without one."

PAGE_PARAMS = ("page", "page_size", "cursor")
Key = tuple[Field, bool]  # a column of the ordering, and whether it descends


def max_page_depth() -> int:
    """The deepest row a page number may reach (page x page_size): MAX_PAGE_DEPTH, 10,000 by default."""
    return getattr(settings, "MAX_PAGE_DEPTH", DEFAULT_MAX_PAGE_DEPTH)


class PageParams(serializers.Serializer):
    """`?page=` (from 1) or `?cursor=` (a page's next_cursor), and `?page_size=` (default 20, clamped to 100)."""

    page = serializers.IntegerField(min_value=1, required=False, help_text="From 1; not with cursor.")
    page_size = serializers.IntegerField(min_value=1, default=DEFAULT_PAGE_SIZE)
    cursor = serializers.CharField(
        max_length=MAX_CURSOR_LENGTH, required=False, help_text="A page's next_cursor: the rows after that page."
    )

    def validate_page_size(self, value: int) -> int:
        return min(value, MAX_PAGE_SIZE)

    def validate(self, attrs: dict) -> dict:
        if "cursor" in attrs:
            if "page" in attrs:
                raise serializers.ValidationError({"cursor": ["Give cursor or page, not both."]})
            return attrs
        attrs.setdefault("page", 1)
        depth = max_page_depth()
        if attrs["page"] * attrs["page_size"] > depth:
            message = f"Page numbers reach row {depth} at most; go further with cursor (each page's next_cursor)."
            raise serializers.ValidationError({"page": [message]})
        return attrs


class PageOutput(serializers.Serializer):
    """A page's fields besides `results`, for the OpenAPI document; a list's page adds its `results`."""

    count = serializers.IntegerField(help_text="Rows of the whole list under its filters, on every page.")
    page = serializers.IntegerField(allow_null=True, help_text="null on a page read by cursor.")
    page_size = serializers.IntegerField(default=DEFAULT_PAGE_SIZE)
    next = serializers.IntegerField(allow_null=True, help_text="The next page number; null past MAX_PAGE_DEPTH.")
    previous = serializers.IntegerField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Opaque; null on the last page.")


def page_params(query_params) -> dict:
    """Validated `page` (None with a cursor), `page_size` and `cursor` from a request's query; bad ones are 400."""
    serializer = PageParams(data={key: query_params[key] for key in PAGE_PARAMS if key in query_params})
    serializer.is_valid(raise_exception=True)
    return {"page": None, "cursor": None, **serializer.validated_data}


def ordering_keys(queryset: QuerySet) -> list[Key]:
    """The queryset's ordering (its own, else its model's) as plain columns, ending with a unique one (the pk)."""
    meta = queryset.model._meta
    names = list(queryset.query.order_by) or (list(meta.ordering) if queryset.query.default_ordering else [])
    keys: list[Key] = []
    for name in names:
        if not isinstance(name, str) or "__" in name or name.lstrip("-") in {"", "?"}:
            raise TypeError(f"Cursor pages need an ordering by the model's own columns, not {name!r}.")
        field = meta.pk if name.lstrip("-") == "pk" else meta.get_field(name.lstrip("-"))
        if field.null or field.is_relation:
            raise TypeError(f"Cursor pages need non-null, non-relation columns to order by, not {name!r}.")
        keys.append((field, name.startswith("-")))
        if field.unique:  # the primary key too: columns after it never decide
            return keys
    return [*keys, (meta.pk, keys[-1][1] if keys else False)]


def in_key_order(queryset: QuerySet) -> tuple[QuerySet, list[Key]]:
    """The queryset ordered exactly by its keys (ordering_keys), and those keys."""
    keys = ordering_keys(queryset)
    return queryset.order_by(*[("-" if descending else "") + field.attname for field, descending in keys]), keys


def _signer(model: type[Model], keys: list[Key]) -> signing.Signer:
    # The salt names the model and the ordering: a cursor of another list or ordering fails its signature.
    ordering = ",".join(("-" if descending else "") + field.attname for field, descending in keys)
    return signing.Signer(salt=f"{CURSOR_SALT}:{model._meta.label_lower}:{ordering}")


def _plain(value: Any) -> Any:
    """A key value as JSON keeps it exactly (datetimes to the microsecond, decimals as written)."""
    if isinstance(value, date | time):  # datetimes are dates
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


def encode_cursor(row: Model, model: type[Model], keys: list[Key]) -> str:
    """The cursor of the rows after `row` (one of `model`'s) in the ordering `keys`."""
    return _signer(model, keys).sign_object([_plain(getattr(row, field.attname)) for field, _ in keys])


def decode_cursor(cursor: str, model: type[Model], keys: list[Key]) -> list:
    """The key values `cursor` holds; a 400 on `cursor` for anything not made by encode_cursor for this ordering."""
    try:
        values = _signer(model, keys).unsign_object(cursor)
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError(cursor)
        return [field.to_python(value) for (field, _), value in zip(keys, values, strict=True)]
    except (signing.BadSignature, ValueError, TypeError, DjangoValidationError):
        raise InvalidInput.on("cursor", BAD_CURSOR) from None


def rows_after(keys: list[Key], values: list) -> Q:
    """The rows after `values` in the ordering `keys`: (a, b) < (x, y) spelled out column by column.

    The bound on the first column alone (a <= x) is implied by the rest; it is there so that the
    database starts its index scan at the cursor rather than filtering from the top of the index.
    """
    after = Q()
    for position, (field, descending) in enumerate(keys):
        equal = {key.attname: value for (key, _), value in zip(keys[:position], values, strict=False)}
        after |= Q(**equal, **{f"{field.attname}__{'lt' if descending else 'gt'}": values[position]})
    first, descending = keys[0]
    return Q(**{f"{first.attname}__{'lte' if descending else 'gte'}": values[0]}) & after


def paginate(queryset: QuerySet, query_params, to_data: Callable[[Iterable], list]) -> dict:
    """One page of `queryset` in the API.md page shape, by `?page=` (OFFSET) or by `?cursor=` (keyset).

    Two queries whatever the page size or depth: the slice (one row more, to know whether a next
    page exists) and the queryset's COUNT. The slice is read whatever the count says, so a count
    kept apart from the rows (loan_service's status counts) can lag without hiding rows, and the
    count is never less than the rows seen. A page number past the end is an empty page.
    """
    params = page_params(query_params)
    page, size = params["page"], params["page_size"]
    rows, keys = in_key_order(queryset)
    if page is None:
        rows = rows.filter(rows_after(keys, decode_cursor(params["cursor"], queryset.model, keys)))
    offset = (page - 1) * size if page else 0
    found = list(rows[offset : offset + size + 1])
    has_next = len(found) > size
    found = found[:size]
    seen = offset + len(found) + has_next if found else 0
    return {
        "count": max(queryset.count(), seen),
        "page": page,
        "page_size": size,
        "next": page + 1 if page and has_next and (page + 1) * size <= max_page_depth() else None,
        "previous": page - 1 if page and page > 1 else None,
        "next_cursor": encode_cursor(found[-1], queryset.model, keys) if has_next else None,
        "results": to_data(found),
    }
