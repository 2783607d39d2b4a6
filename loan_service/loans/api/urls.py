from common.api import both_slashes
from common.audit.views import AuditListView
from loans.api import report_views as reports
from loans.api import servicing_views as servicing
from loans.api import views

urlpatterns = [
    *both_slashes("customer-loan", views.CreateLoanView.as_view(), "customer-loan"),
    *both_slashes("approve-reject-loan/<int:loan_id>", views.DecideLoanView.as_view(), "approve-reject-loan"),
    *both_slashes("edit-loan/<int:loan_id>", views.EditLoanView.as_view(), "edit-loan"),
    *both_slashes("list-loans-admin-agent", views.ListLoansView.as_view(), "list-loans-admin-agent"),
    *both_slashes("list-loans-customer", views.ListCustomerLoansView.as_view(), "list-loans-customer"),
    *both_slashes("quote", views.QuoteView.as_view(), "quote"),
    *both_slashes("audit", AuditListView.as_view(), "audit"),
    *both_slashes("reports/portfolio", reports.PortfolioView.as_view(), "report-portfolio"),
    *both_slashes("reports/collections", reports.CollectionsView.as_view(), "report-collections"),
    *both_slashes("<int:loan_id>", views.LoanDetailView.as_view(), "loan"),
    *both_slashes("<int:loan_id>/schedule", views.LoanScheduleView.as_view(), "loan-schedule"),
    *both_slashes("<int:loan_id>/history", views.LoanHistoryView.as_view(), "loan-history"),
    *both_slashes("<int:loan_id>/disburse", servicing.DisburseLoanView.as_view(), "loan-disburse"),
    *both_slashes("<int:loan_id>/cancel", servicing.CancelLoanView.as_view(), "loan-cancel"),
    *both_slashes("<int:loan_id>/write-off", servicing.WriteOffLoanView.as_view(), "loan-write-off"),
    *both_slashes("<int:loan_id>/repayments", servicing.RepaymentsView.as_view(), "loan-repayments"),
    *both_slashes("<int:loan_id>/transactions", servicing.TransactionsView.as_view(), "loan-transactions"),
    *both_slashes(
        "<int:loan_id>/transactions/<int:transaction_id>/reverse",
        servicing.ReverseTransactionView.as_view(),
        "loan-transaction-reverse",
    ),
    *both_slashes("<int:loan_id>/instalments", servicing.InstalmentsView.as_view(), "loan-instalments"),
    *both_slashes("<int:loan_id>/payoff", servicing.PayoffView.as_view(), "loan-payoff"),
    *both_slashes("<int:loan_id>/statements", servicing.StatementsView.as_view(), "loan-statements"),
    *both_slashes("<int:loan_id>/statements/<uuid:statement_id>", servicing.StatementView.as_view(), "loan-statement"),
    *both_slashes(
        "<int:loan_id>/statements/<uuid:statement_id>/pdf", servicing.StatementPdfView.as_view(), "loan-statement-pdf"
    ),
]
