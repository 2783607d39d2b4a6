"""The late-fee policy: a flat amount or a percentage of what is overdue. Pure `Decimal`, no Django."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from loans.schedule import CENT, ZERO, to_cents


@dataclass(frozen=True)
class LateFee:
    """`amount` (flat, in money) or `percent` (of the overdue part of the instalment); exactly one is set."""

    amount: Decimal | None = None
    percent: Decimal | None = None

    def on(self, overdue: Decimal) -> Decimal:
        """The fee charged on an instalment with `overdue` still unpaid, rounded half-up to cents."""
        if overdue <= ZERO:
            return ZERO
        if self.amount is not None:
            return self.amount
        return to_cents(overdue * self.percent / 100)

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else f"{self.amount}"


def parse_late_fee(text: str) -> LateFee:
    """ "25.00" (flat, at most two decimals) or "2%" / "1.5%" (0 to 100); ValueError says what is wrong."""
    text = text.strip()
    is_percent = text.endswith("%")
    number = text.removesuffix("%").strip()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f'{text!r} is not an amount ("25.00") or a percentage ("2%")') from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} must be a number of zero or more")
    if is_percent:
        if value > 100:
            raise ValueError(f"{text!r}: a percentage is at most 100")
        return LateFee(percent=value)
    if value != value.quantize(CENT) or value >= Decimal("1e12"):
        raise ValueError(f"{text!r}: an amount has at most two decimals and twelve digits")
    return LateFee(amount=value.quantize(CENT))
