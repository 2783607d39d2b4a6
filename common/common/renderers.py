"""The JSON renderer every service answers with.

Kept out of `common.drf`, which settings import: importing DRF's renderers
while settings load would freeze DRF's own settings before REST_FRAMEWORK exists.
"""

from __future__ import annotations

import csv
import decimal
import io

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class DecimalAsStringEncoder(JSONEncoder):
    """DRF's encoder, except that a Decimal leaves as its exact string ("7.50"), never a float."""

    def default(self, obj):
        if isinstance(obj, decimal.Decimal):
            return str(obj)
        return super().default(obj)


class DecimalSafeJSONRenderer(JSONRenderer):
    """JSONRenderer for money: a Decimal a view returns directly stays a decimal string."""

    encoder_class = DecimalAsStringEncoder


class CSVRenderer(BaseRenderer):
    """A table as CSV for spreadsheets: `{"columns": [...], "rows": [[...], ...]}` becomes a header
    line and one line per row (RFC 4180: CRLF, quotes where needed). A Decimal keeps its exact
    digits, None is an empty cell. Chosen with `?format=csv` or `Accept: text/csv`."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(data["columns"])
        writer.writerows(["" if value is None else value for value in row] for row in data["rows"])
        return out.getvalue().encode(self.charset)
