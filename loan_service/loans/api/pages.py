"""API.md's page of loans, fetched whatever the total says."""

from __future__ import annotations

from common.api import page_params
from loans.api.serializers import loan_data


def loans_page(queryset, query_params) -> dict:
    """One page of loans: a COUNT and the slice, two queries whatever the page size.

    common.api.paginate skips the slice when the offset reaches the count; here the
    count may be LoanStatusCount, which can lag the rows after a write outside the
    services, so the slice is always read (one row more, to know if a next page
    exists) and the count is never less than the rows seen.
    """
    page, page_size = page_params(query_params)
    offset = (page - 1) * page_size
    rows = list(queryset[offset : offset + page_size + 1])
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    seen = offset + len(rows) + has_next if rows else 0
    count = max(queryset.count(), seen)
    return {
        "count": count,
        "page": page,
        "page_size": page_size,
        "next": page + 1 if has_next else None,
        "previous": page - 1 if page > 1 else None,
        "results": [loan_data(loan) for loan in rows],
    }
