"""A loan's statement as an A4 PDF: frozen dataclasses in, bytes out. No Django.

The caller (a Celery task) loads the loan and fills `StatementData`; this module
only lays it out with reportlab's platypus. Table cells are plain strings (drawn
as they are, fast enough for a 480-instalment schedule); the only markup is in
`Paragraph`s, whose text is escaped here. The fonts are the PDF standard
Helvetica family: nothing to embed or install, Western European text renders,
characters outside it are drawn as a box instead of failing the statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from typing import Literal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import CondPageBreak, Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from loans.schedule import ZERO, to_cents

TransactionKind = Literal["disbursement", "repayment", "fee", "reversal", "write_off"]


@dataclass(frozen=True)
class StatementLine:
    """One instalment of the schedule: what is due and what has been paid against it."""

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fee_paid: Decimal
    paid_off_on: date | None = None


@dataclass(frozen=True)
class StatementTransaction:
    """A money movement on the loan and how it was allocated."""

    id: int
    kind: TransactionKind
    on: date
    amount: Decimal
    principal: Decimal
    interest: Decimal
    fee: Decimal
    reversed: bool = False
    note: str = ""


@dataclass(frozen=True)
class StatementData:
    """Everything a statement shows, already computed by the caller."""

    loan_id: int
    customer_id: int
    agent_id: int
    status: str
    principal: Decimal
    interest: Decimal  # annual, percent
    months: int
    emi: Decimal
    disbursed_on: date | None
    end_date: date | None
    generated_at: datetime  # UTC
    outstanding_principal: Decimal
    outstanding_interest: Decimal
    outstanding_fees: Decimal
    total_outstanding: Decimal
    days_past_due: int
    next_due_date: date | None
    next_due_amount: Decimal
    instalments: tuple[StatementLine, ...]
    transactions: tuple[StatementTransaction, ...]
    title: str = "Loan statement"
    lender: str = "Loans"


PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 16 * mm
FRAME_PADDING = 6  # points, reportlab's default
NOTE_LIMIT = 300  # characters: a row taller than a page is one reportlab cannot split, so longer notes are cut
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
INK, MUTED, RULE = colors.HexColor("#1f2933"), colors.HexColor("#616e7c"), colors.HexColor("#cbd2d9")
STRIPE, ACCENT = colors.HexColor("#f5f7fa"), colors.HexColor("#1d4f91")


def _style(name: str, font: str, size: float, color: colors.Color, **extra: float) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.25, textColor=color, **extra)


TITLE = _style("title", "Helvetica-Bold", 18, INK)
SUBTITLE = _style("subtitle", "Helvetica", 9, MUTED)
HEADING = _style("heading", "Helvetica-Bold", 11, ACCENT, spaceBefore=10, spaceAfter=4)
NOTE = _style("note", "Helvetica", 7.5, INK)
EMPTY = _style("empty", "Helvetica-Oblique", 9, MUTED)


def render_statement(data: StatementData) -> bytes:
    """The statement of `data` as the bytes of an A4 PDF, numbered "page N of M"."""
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        # SimpleDocTemplate's frame pads its content by 6 pt: so that the text and the tables line up
        # with the running header, the document's margins are that much smaller than MARGIN.
        leftMargin=MARGIN - FRAME_PADDING,
        rightMargin=MARGIN - FRAME_PADDING,
        topMargin=MARGIN + 8 * mm - FRAME_PADDING,
        bottomMargin=MARGIN + 4 * mm - FRAME_PADDING,
        title=f"{data.title}, loan #{data.loan_id}",
        author=data.lender,
        subject=f"Loan #{data.loan_id} at {_when(data.generated_at)}",
        creator=data.lender,
    )

    def decorate(canvas: Canvas, _document: SimpleDocTemplate) -> None:
        _draw_running_header_and_footer(canvas, data)

    story = [
        *_title_block(data),
        _summary_boxes(data),
        *_section("Repayment schedule", _schedule_table(data.instalments)),
        *_section("Transactions", _transactions_table(data.transactions)),
    ]
    document.build(story, onFirstPage=decorate, onLaterPages=decorate, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


def money(value: Decimal) -> str:
    """Two decimals, rounded half-up, with thousands separators: 1234567.891 is "1,234,567.89"."""
    return f"{to_cents(Decimal(value)):,.2f}"


def _day(value: date | None) -> str:
    return value.isoformat() if value else "-"


def _when(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment  # naive means UTC already
    return f"{utc:%Y-%m-%d %H:%M} UTC"


def _text(value: str) -> str:
    """Plain text made safe for a Paragraph, which parses markup: <, > and & escaped, on one line."""
    return escape(" ".join(value.split()))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


class _NumberedCanvas(Canvas):
    """Keeps every page until the end, so that each can say "page N of M"."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self) -> None:  # reportlab calls it at the end of each page
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            self.setFont("Helvetica", 8)
            self.setFillColor(MUTED)
            self.drawRightString(PAGE_WIDTH - MARGIN, MARGIN, f"page {number} of {total}")
            super().showPage()
        super().save()


def _draw_running_header_and_footer(canvas: Canvas, data: StatementData) -> None:
    canvas.saveState()
    top = PAGE_HEIGHT - MARGIN
    canvas.setFillColor(INK)
    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(MARGIN, top, data.lender)
    canvas.setFont("Helvetica", 9)
    canvas.setFillColor(MUTED)
    canvas.drawRightString(PAGE_WIDTH - MARGIN, top, f"{data.title}  |  Loan #{data.loan_id}")
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN, top - 3 * mm, PAGE_WIDTH - MARGIN, top - 3 * mm)
    canvas.line(MARGIN, MARGIN + 4 * mm, PAGE_WIDTH - MARGIN, MARGIN + 4 * mm)
    canvas.setFont("Helvetica", 8)
    canvas.drawString(MARGIN, MARGIN, f"Generated {_when(data.generated_at)}")
    canvas.restoreState()


def _title_block(data: StatementData) -> list:
    subtitle = (
        f"Loan #{data.loan_id}  |  customer #{data.customer_id}  |  agent #{data.agent_id}  |  "
        f"generated {_when(data.generated_at)}"
    )
    return [Paragraph(_text(data.title), TITLE), Paragraph(_text(subtitle), SUBTITLE), Spacer(1, 5 * mm)]


def _section(heading: str, body: Flowable) -> list[Flowable]:
    # A new page rather than a heading alone at the foot of one (keepWithNext would move a whole
    # table that fits on a page to the next one, leaving this one half empty).
    return [CondPageBreak(30 * mm), Paragraph(heading, HEADING), body]


def _summary_boxes(data: StatementData) -> Table:
    terms = [
        ("Principal", money(data.principal)),
        ("Interest rate", f"{data.interest:.2f} % a year"),
        ("Term", f"{data.months} months"),
        ("Monthly instalment (EMI)", money(data.emi)),
        ("Disbursed on", _day(data.disbursed_on)),
        ("Ends on", _day(data.end_date)),
        ("Status", data.status),
    ]
    balances = [
        ("Outstanding principal", money(data.outstanding_principal)),
        ("Outstanding interest", money(data.outstanding_interest)),
        ("Outstanding fees", money(data.outstanding_fees)),
        ("Total outstanding", money(data.total_outstanding)),
        ("Days past due", str(data.days_past_due)),
        ("Next due date", _day(data.next_due_date)),
        ("Next due amount", money(data.next_due_amount) if data.next_due_date else "-"),
    ]
    gap = 6 * mm
    width = (CONTENT_WIDTH - gap) / 2
    cells = [[_key_values("Terms", terms, width, None), "", _key_values("Balances", balances, width, 4)]]
    boxes = Table(cells, colWidths=[width, gap, width])
    flush = [("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]
    boxes.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), *flush]))
    return boxes


def _key_values(caption: str, rows: list[tuple[str, str]], width: float, strong_row: int | None) -> Table:
    table = Table([[caption, ""], *rows], colWidths=[width * 0.55, width * 0.45])
    style = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("FONT", (0, 0), (0, 0), "Helvetica-Bold", 9),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("TEXTCOLOR", (0, 1), (0, -1), MUTED),
        ("ALIGN", (1, 1), (1, -1), "RIGHT"),
        ("BOX", (0, 0), (-1, -1), 0.5, RULE),
        ("LINEBELOW", (0, 1), (-1, -2), 0.25, RULE),
    ]
    if strong_row is not None:
        style += [
            ("FONT", (0, strong_row), (-1, strong_row), "Helvetica-Bold", 9),
            ("TEXTCOLOR", (0, strong_row), (-1, strong_row), INK),
            ("BACKGROUND", (0, strong_row), (-1, strong_row), STRIPE),
        ]
    table.setStyle(TableStyle(style))
    return table


def _schedule_table(lines: tuple[StatementLine, ...]) -> Table | Paragraph:
    if not lines:
        return Paragraph("No schedule yet: the loan has not been disbursed.", EMPTY)
    header = ["No.", "Due date", "Principal", "Interest", "Fee", "Total due", "Paid", "Paid off on"]
    amounts = [_schedule_amounts(line) for line in lines]
    body = [
        [str(line.number), _day(line.due_date), *map(money, cells), _day(line.paid_off_on)]
        for line, cells in zip(lines, amounts, strict=True)
    ]
    totals = ["", "Total", *(money(sum(column, ZERO)) for column in zip(*amounts, strict=True)), ""]
    widths = [12 * mm, 22 * mm, 25 * mm, 23 * mm, 19 * mm, 25 * mm, 25 * mm]
    table = Table([header, *body, totals], colWidths=[*widths, CONTENT_WIDTH - sum(widths)], repeatRows=1)
    style = _grid_style(numeric_columns=(2, 6), has_total_row=True)
    style.add("ALIGN", (7, 0), (7, -1), "CENTER")
    table.setStyle(style)
    return table


def _schedule_amounts(line: StatementLine) -> tuple[Decimal, ...]:
    """Principal, interest and fee due, their total, and what has been paid of it."""
    due = line.principal_due + line.interest_due + line.fee_due
    paid = line.principal_paid + line.interest_paid + line.fee_paid
    return line.principal_due, line.interest_due, line.fee_due, due, paid


def _transactions_table(transactions: tuple[StatementTransaction, ...]) -> Table | Paragraph:
    if not transactions:
        return Paragraph("No transactions yet.", EMPTY)
    header = ["Date", "Ref.", "Kind", "Amount", "Principal", "Interest", "Fee", "Note"]
    rows = [header, *(_transaction_row(transaction) for transaction in transactions)]
    widths = [18 * mm, 11 * mm, 21 * mm, 23 * mm, 22 * mm, 20 * mm, 15 * mm]
    table = Table(rows, colWidths=[*widths, CONTENT_WIDTH - sum(widths)], repeatRows=1)
    style = _grid_style(numeric_columns=(3, 6), has_total_row=False)
    for index, transaction in enumerate(transactions, start=1):
        if transaction.reversed:
            style.add("TEXTCOLOR", (0, index), (-2, index), MUTED)
    table.setStyle(style)
    return table


def _transaction_row(transaction: StatementTransaction) -> list:
    amounts = (transaction.amount, transaction.principal, transaction.interest, transaction.fee)
    note = _text(_shorten(transaction.note, NOTE_LIMIT))
    if transaction.reversed:
        note = '<font color="#b42318"><b>reversed</b></font>' + (f" &middot; {note}" if note else "")
    kind = transaction.kind.replace("_", " ")
    return [
        _day(transaction.on),
        f"#{transaction.id}",
        kind,
        *map(money, amounts),
        Paragraph(note, NOTE) if note else "",
    ]


def _grid_style(*, numeric_columns: tuple[int, int], has_total_row: bool) -> TableStyle:
    first, last = numeric_columns
    body_end = -2 if has_total_row else -1
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
            ("TEXTCOLOR", (0, 0), (-1, -1), INK),
            ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
            ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
            ("ROWBACKGROUNDS", (0, 1), (-1, body_end), [colors.white, STRIPE]),
            ("ALIGN", (first, 0), (last, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 4),
            ("RIGHTPADDING", (0, 0), (-1, -1), 4),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ("LINEBELOW", (0, 0), (-1, 0), 0.5, ACCENT),
            ("LINEBELOW", (0, -1), (-1, -1), 0.5, RULE),
        ]
    )
    if has_total_row:
        style.add("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8)
        style.add("LINEABOVE", (0, -1), (-1, -1), 0.75, INK)
    return style
