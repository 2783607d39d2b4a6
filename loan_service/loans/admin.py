"""The operators' view of loans: filters, search, the history, and every change through the services.

Read-only as a model form: a loan changes only through services.py and servicing.py (row lock,
history with the admin's user_service id, one event, kept counts). Decisions are list actions;
disbursement, cancellation, repayments, write-offs and reversals are small views of the change page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

from django import forms as django_forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from common.admin_sso import remote_user_id
from common.api import MAX_ID
from common.errors import DomainError
from loans import forms, ledger, selectors, services, servicing
from loans.models import Instalment, Loan, LoanTransaction, Statement

REVERSIBLE_WHILE = (Loan.Status.DISBURSED, Loan.Status.CLOSED)


def money(amount) -> str:
    return f"{amount:,.2f}"


def operator_id(user) -> int | None:
    """The user_service id of an admin signed in through user_service; None for any other (local) user."""
    try:
        return remote_user_id(user)
    except ValueError:
        return None


class FormAlreadyPosted(Exception):
    """The one-time token of a repayment form was already carried out on this loan."""


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Past due"), ("no", "Current")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(days_past_due__gt=0)  # the partial index loan_overdue
        if self.value() == "no":
            return queryset.filter(days_past_due=0)
        return queryset


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on the loan's page, never edited there: servicing.py alone writes them."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class InstalmentInline(ReadOnlyInline):
    model = Instalment
    fields = readonly_fields = ["number", *servicing.INSTALMENT_MONEY]  # due and paid, by part


class TransactionInline(ReadOnlyInline):
    model = LoanTransaction
    fields = ["on", "kind", "amount", *servicing.PORTIONS, "reversed", "reverses", "note", "created_by"]
    readonly_fields = [*fields, "reverse_link"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reversal_of")

    def get_fields(self, request, obj=None):
        if obj is not None and obj.status in REVERSIBLE_WHILE and operator_id(request.user) is not None:
            return [*self.fields, "reverse_link"]
        return self.fields

    @admin.display(boolean=True, description="reversed")
    def reversed(self, tx: LoanTransaction) -> bool:
        return tx.is_reversed

    @admin.display(description="reverses")
    def reverses(self, tx: LoanTransaction) -> str:
        original = tx.reversal_of
        return f"{original.get_kind_display().lower()} of {original.on}" if original else "-"

    @admin.display(description="")
    def reverse_link(self, tx: LoanTransaction) -> str:
        if tx.kind not in ledger.REVERSIBLE or tx.is_reversed:
            return ""
        url = reverse("admin:loans_loan_reverse", args=[tx.loan_id, tx.pk])
        return format_html('<a class="button" href="{}">Reverse</a>', url)


class StatementInline(ReadOnlyInline):
    model = Statement
    fields = readonly_fields = ["status", "created_at", "ready_at", "error", "download"]

    @admin.display(description="file")
    def download(self, statement: Statement) -> str:
        if statement.status != Statement.Status.READY:
            return "-"
        url = reverse("admin:loans_loan_statement_pdf", args=[statement.loan_id, statement.pk])
        return format_html('<a href="{}">PDF</a>', url)


@dataclass(frozen=True)
class Servicing:
    """One thing an operator does from a loan's change page: its form, when it applies, and its use case."""

    name: str  # of its URL, admin:loans_loan_<name>
    label: str
    form: type[django_forms.Form]
    applies: Callable[[Loan, LoanTransaction | None], bool]
    run: Callable[[Loan, int, dict, LoanTransaction | None], tuple[Loan, str]]  # the loan after, and what happened


def _disburse(loan, admin_id, data, tx):
    loan = servicing.disburse_loan(loan_id=loan.pk, admin_id=admin_id, on=data["date"])
    due = f"next instalment {money(loan.next_due_amount)} due on {loan.next_due_date}"
    return loan, f"Loan #{loan.pk} disbursed on {loan.disbursed_on}: {money(loan.principal)} paid out; {due}."


def _cancel(loan, admin_id, data, tx):
    return servicing.cancel_loan(loan_id=loan.pk, admin_id=admin_id, note=data["note"]), f"Loan #{loan.pk} cancelled."


def _repay(loan, admin_id, data, tx):
    repayment, loan = servicing.record_repayment(
        loan_id=loan.pk, user_id=admin_id, amount=data["amount"], on=data["date"]
    )
    if loan.status == Loan.Status.CLOSED:
        return loan, f"Repayment of {money(repayment.amount)} recorded; the loan is paid off and closed."
    return loan, f"Repayment of {money(repayment.amount)} recorded; {money(loan.total_outstanding)} still owed."


def _write_off(loan, admin_id, data, tx):
    loan = servicing.write_off_loan(loan_id=loan.pk, admin_id=admin_id, note=data["note"])
    lost = loan.written_off_principal + loan.written_off_interest + loan.written_off_fees
    return loan, f"Loan #{loan.pk} written off: {money(lost)} lost."


def _reverse(loan, admin_id, data, tx):
    _, loan = servicing.reverse_transaction(loan_id=loan.pk, transaction_id=tx.pk, admin_id=admin_id, note=data["note"])
    what = f"{tx.get_kind_display()} of {money(tx.amount)} on {tx.on}"
    return loan, f"{what} reversed; {money(loan.total_outstanding)} now owed."


def _status_is(*statuses) -> Callable[[Loan, LoanTransaction | None], bool]:
    return lambda loan, tx: loan.status in statuses


def _reversible(loan: Loan, tx: LoanTransaction | None) -> bool:
    return loan.status in REVERSIBLE_WHILE and tx is not None and tx.kind in ledger.REVERSIBLE and not tx.is_reversed


APPROVED, DISBURSED = Loan.Status.APPROVED, Loan.Status.DISBURSED
# The object tools of the change page, in this order, for a loan whose status allows them.
LOAN_SERVICING = [
    Servicing("disburse", "Disburse", forms.DisburseForm, _status_is(APPROVED), _disburse),
    Servicing("cancel", "Cancel", forms.CancelForm, _status_is(APPROVED), _cancel),
    Servicing("repayment", "Post repayment", forms.RepaymentForm, _status_is(DISBURSED), _repay),
    Servicing("write_off", "Write off", forms.WriteOffForm, _status_is(DISBURSED), _write_off),
]
REVERSE = Servicing("reverse", "Reverse", forms.ReverseForm, _reversible, _reverse)  # one per transaction


def show_on_form(form: django_forms.Form, error: DomainError) -> None:
    """A domain error on the form: InvalidInput's `details` on their fields, anything else above them."""
    if not error.details:
        form.add_error(None, error.message)
    for field, problems in error.details.items():
        form.add_error(field if field in form.fields else None, problems)


def form_mark(token: uuid.UUID) -> str:
    return f"[form {token}]"


def refuse_if_posted(loan: Loan, token: uuid.UUID) -> None:
    """FormAlreadyPosted if the form rendered with `token` was already carried out on this loan.

    Not the session: two quick POSTs carry the same session, and each reads it before either saves it.
    Instead the caller's transaction locks the loan row here and, on success, writes the admin LogEntry
    ending in the token's mark. A second POST waits on the lock until the first commits, then finds the
    mark (PostgreSQL reads rows committed during the wait; SQLite's IMMEDIATE transactions, see
    common.env, run one writer at a time). A refused POST writes no mark: its form may be corrected.
    """
    Loan.objects.select_for_update().values_list("pk", flat=True).get(pk=loan.pk)
    used = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Loan),
        object_id=str(loan.pk),
        change_message__endswith=form_mark(token),
    )
    if used.exists():
        raise FormAlreadyPosted


def facts_of(loan: Loan, tx: LoanTransaction | None) -> list[tuple[str, object]]:
    """What an operator checks before acting on `loan` (and `tx`)."""
    rows: list[tuple[str, object]] = [("Status", loan.get_status_display()), ("Principal", money(loan.principal))]
    rows.append(("Term", f"{loan.months} months at {loan.interest}%, EMI {money(loan.emi)}"))
    if loan.status == APPROVED:
        rows.append(("Approved on", timezone.localdate(loan.decided_at)))
    if loan.is_serviced:
        rows += [("Outstanding", money(loan.total_outstanding)), ("Days past due", loan.days_past_due)]
    if loan.next_due_date and loan.status == DISBURSED:
        rows.append(("Next due", f"{money(loan.next_due_amount)} on {loan.next_due_date}"))
        with suppress(DomainError):  # a transaction dated after today: no quote for today
            rows.append(("Payoff today", money(selectors.payoff_of(loan, timezone.localdate()).total)))
    if tx is not None:
        rows.append(("Transaction", f"{tx.get_kind_display()} of {money(tx.amount)} on {tx.on}"))
    return rows


@admin.register(Loan)
class LoanAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "customer_id",
        "agent_id",
        "principal",
        "interest",
        "months",
        "emi",
        "status",
        "total_outstanding",
        "days_past_due",
        "created_at",
    ]
    list_filter = ["status", OverdueFilter, "created_at", "start_date", "decided_at"]
    search_fields = ["=id", "=customer_id", "=agent_id"]
    search_help_text = "A loan, customer or agent id."
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Loan._meta.fields]
    inlines = [InstalmentInline, TransactionInline, StatementInline]
    change_form_template = "loans/loan_change_form.html"
    servicing_form_template = "loans/loan_servicing_form.html"
    history_list_display = ["status", "principal", "months"]
    object_history_list_template = "loans/loan_history_list.html"
    actions = ["approve_loans", "reject_loans"]

    def has_add_permission(self, request) -> bool:
        return False  # loans come from agents through the API, which checks the customer

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a form save would bypass the lock, the event and the counts: change through the services

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the history is the audit trail; loans are never deleted

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history saves a POSTed version even with the Revert button hidden.
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path(
                f"<int:loan_id>/{action.name.replace('_', '-')}/",
                view(partial(self.servicing_view, action=action)),
                name=f"loans_loan_{action.name}",
            )
            for action in LOAN_SERVICING
        ]
        urls += [
            path(
                "<int:loan_id>/transactions/<int:transaction_id>/reverse/",
                view(partial(self.servicing_view, action=REVERSE)),
                name="loans_loan_reverse",
            ),
            path(
                "<int:loan_id>/statements/<uuid:statement_id>/pdf/",
                view(self.statement_pdf_view),
                name="loans_loan_statement_pdf",
            ),
        ]
        return urls + super().get_urls()

    def may_service(self, request) -> bool:
        """Only admins of user_service sign in here (as superusers); the rest of this admin needs the view right."""
        return operator_id(request.user) is not None and self.has_view_permission(request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        loan = self.get_object(request, unquote(object_id))
        tools = []
        if loan is not None and self.may_service(request):
            tools = [
                (action.label, reverse(f"admin:loans_loan_{action.name}", args=[loan.pk]))
                for action in LOAN_SERVICING
                if action.applies(loan, None)
            ]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "servicing_tools": tools})

    def servicing_view(self, request, loan_id: int, action: Servicing, transaction_id: int | None = None):
        """The form of one servicing action: shown on GET, carried out by the use case on POST."""
        if not self.may_service(request):
            raise PermissionDenied
        loan = get_object_or_404(Loan, pk=loan_id)
        tx = get_object_or_404(LoanTransaction, pk=transaction_id, loan=loan) if transaction_id else None
        change_url = reverse("admin:loans_loan_change", args=[loan.pk])
        if request.method != "POST" and not action.applies(loan, tx):
            self.message_user(request, f"{action.label} does not apply to {loan}.", messages.WARNING)
            return redirect(change_url)
        form = action.form(request.POST) if request.method == "POST" else action.form()
        if form.is_bound and form.is_valid() and self._carried_out(request, action, form, loan, tx):
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{action.label}: loan #{loan.pk}",
            "loan": loan,
            "form": form,
            "facts": facts_of(loan, tx),
            "submit_label": action.label,
            "change_url": change_url,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, self.servicing_form_template, context)

    def _carried_out(self, request, action: Servicing, form, loan: Loan, tx: LoanTransaction | None) -> bool:
        """Run the use case and say so; False (the error on the form, nothing written) if it refused."""
        token = form.cleaned_data.get("token")
        try:
            with transaction.atomic():
                if token is not None:
                    refuse_if_posted(loan, token)
                changed, message = action.run(loan, operator_id(request.user), form.cleaned_data, tx)
                self.log_change(request, changed, message if token is None else f"{message} {form_mark(token)}")
        except FormAlreadyPosted:
            self.message_user(request, "This form was already posted: nothing more was recorded.", messages.WARNING)
        except DomainError as error:
            show_on_form(form, error)
            return False
        else:
            self.message_user(request, message, messages.SUCCESS)
        return True

    def statement_pdf_view(self, request, loan_id: int, statement_id: uuid.UUID):
        loan = get_object_or_404(Loan, pk=loan_id)
        if not self.has_view_permission(request, loan):
            raise PermissionDenied
        statement = get_object_or_404(Statement, pk=statement_id, loan=loan, status=Statement.Status.READY)
        name = f"loan-{loan.pk}-statement.pdf"
        return FileResponse(statement.file.open("rb"), content_type="application/pdf", filename=name)

    def get_search_results(self, request, queryset, search_term):
        """Exact integer lookups on the indexed id columns; `=id` search would compare UPPER(col::text)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        # isdigit() also accepts "²", which int() refuses; only ASCII 0-9 is an id.
        if not (term.isascii() and term.isdecimal()) or int(term) > MAX_ID:
            return queryset.none(), False
        number = int(term)
        return queryset.filter(Q(id=number) | Q(customer_id=number) | Q(agent_id=number)), False

    @admin.action(description="Approve selected NEW loans")
    def approve_loans(self, request, queryset):
        self._decide(request, queryset, Loan.Status.APPROVED)

    @admin.action(description="Reject selected NEW loans")
    def reject_loans(self, request, queryset):
        self._decide(request, queryset, Loan.Status.REJECTED)

    def _decide(self, request, queryset, status: str) -> None:
        admin_id = remote_user_id(request.user)
        done, skipped = 0, 0
        for loan_id in queryset.values_list("id", flat=True):
            try:
                services.decide_loan(
                    loan_id=loan_id, admin_id=admin_id, status=status, note="Decided in the admin.", request=request
                )
                done += 1
            except DomainError:
                skipped += 1
        self.message_user(request, f"{done} loan(s) {status.lower()}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: already decided.", messages.WARNING)
