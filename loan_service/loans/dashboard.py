"""The operators' portfolio dashboard in the Django admin (/admin/dashboard/): today's figures, collections
by month and PAR over time as server-drawn SVG (no script, no CDN: it works offline), and the late loans
to call today.

PAR over time comes from the daily job's snapshots (PortfolioDay, one per day as it was reported then);
today's point is the live report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from loans import reports
from loans.models import Loan, PortfolioDay
from loans.schedule import add_months

CALL_LIST = 25
WIDTH, HEIGHT, PAD = 640, 220, 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    width: float
    label: str
    title: str


def _scale(value: Decimal, top: Decimal) -> float:
    return float(value / top) * (HEIGHT - 2 * PAD) if top else 0.0


def collections_chart(months: list[dict]) -> dict:
    """Two bars a month, due and collected, on one scale."""
    top = max([row["due"] for row in months] + [row["collected"] for row in months] + [Decimal(1)])
    step = (WIDTH - 2 * PAD) / max(1, len(months))
    bars, labels = [], []
    for index, row in enumerate(months):
        left = PAD + index * step
        for offset, name in ((0.1, "due"), (0.5, "collected")):
            height = _scale(row[name], top)
            bars.append(
                Bar(
                    x=round(left + offset * step, 1),
                    y=round(HEIGHT - PAD - height, 1),
                    height=round(height, 1),
                    width=round(step * 0.38, 1),
                    label=name,
                    title=f"{row['month']} {name}: {row[name]:,.2f}",
                )
            )
        labels.append({"x": round(left + step / 2, 1), "text": row["month"][2:]})
    return {"bars": bars, "labels": labels, "top": f"{top:,.0f}", "width": WIDTH, "height": HEIGHT, "pad": PAD}


def par_chart(points: list[tuple[date, dict]]) -> dict:
    """PAR30 and PAR90 by day, as two polylines on a scale from 0 to the highest ratio seen."""
    top = max(
        [Decimal(figures["par"][name]) for _, figures in points for name in ("par30", "par90")] + [Decimal("0.01")]
    )
    first, last = (points[0][0], points[-1][0]) if points else (None, None)
    span = max(1, (last - first).days) if points else 1
    lines = {}
    for name in ("par30", "par90"):
        lines[name] = " ".join(
            f"{PAD + (day - first).days / span * (WIDTH - 2 * PAD):.1f},"
            f"{HEIGHT - PAD - _scale(Decimal(figures['par'][name]), top):.1f}"
            for day, figures in points
        )
    return {
        "lines": lines,
        "top": f"{top * 100:.2f}%",
        "first": first,
        "last": last,
        "points": len(points),
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
    }


def dashboard_view(request):
    today = timezone.localdate()
    portfolio = reports.portfolio(as_of=today, period_start=today.replace(day=1))
    collections = reports.collections(start=add_months(today.replace(day=1), -11), end=today, today=today)
    history = [
        (row.day, row.figures)
        for row in PortfolioDay.objects.filter(day__gte=today - timedelta(days=365), day__lt=today)
    ]
    history.append((today, portfolio))
    late = (
        Loan.objects.filter(status=Loan.Status.DISBURSED, days_past_due__gt=0)
        .order_by("-days_past_due", "-created_at", "-id")
        .only("id", "customer_id", "agent_id", "days_past_due", "next_due_amount", "total_outstanding")[:CALL_LIST]
    )
    context = {
        **admin.site.each_context(request),
        "title": "Portfolio dashboard",
        "today": today,
        "portfolio": portfolio,
        "collections": collections,
        "collections_chart": collections_chart(collections["months"]),
        "par_chart": par_chart(history),
        "late": late,
        "call_list": CALL_LIST,
        "par": [(f"par{days}", days, portfolio["par"][f"par{days}"]) for days in reports.PAR_DAYS],
    }
    return TemplateResponse(request, "loans/dashboard.html", context)
