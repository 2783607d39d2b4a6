"""The JSON renderer every service answers with.

Kept out of `common.drf`, which settings import: importing DRF's renderers
while settings load would freeze DRF's own settings before REST_FRAMEWORK exists.
"""

from __future__ import annotations

import decimal

from rest_framework.renderers import JSONRenderer
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
