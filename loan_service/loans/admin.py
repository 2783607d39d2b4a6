"""The operators' view of loans: filters, search, the history, and decisions through the services.

Read-only apart from the approve / reject actions: a loan changes only through the
services (row lock, history with the admin's user_service id, one event, kept counts).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from simple_history.admin import SimpleHistoryAdmin

from common.admin_sso import remote_user_id
from common.api import MAX_ID
from common.errors import DomainError
from loans import services
from loans.models import Loan


@admin.register(Loan)
class LoanAdmin(SimpleHistoryAdmin):
    list_display = ["id", "customer_id", "agent_id", "principal", "interest", "months", "emi", "status", "created_at"]
    list_filter = ["status", "created_at", "start_date", "decided_at"]
    search_fields = ["=id", "=customer_id", "=agent_id"]
    search_help_text = "A loan, customer or agent id."
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Loan._meta.fields]
    history_list_display = ["status", "principal", "months"]
    object_history_list_template = "loans/loan_history_list.html"
    actions = ["approve_loans", "reject_loans"]

    def has_add_permission(self, request) -> bool:
        return False  # loans come from agents through the API, which checks the customer

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a form save would bypass the lock, the event and the counts: decide with the actions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the history is the audit trail; loans are never deleted

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history saves a POSTed version even with the Revert button hidden.
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

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
                services.decide_loan(loan_id=loan_id, admin_id=admin_id, status=status, note="Decided in the admin.")
                done += 1
            except DomainError:
                skipped += 1
        self.message_user(request, f"{done} loan(s) {status.lower()}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: already decided.", messages.WARNING)
