from common.api import both_slashes
from loans.api import views

urlpatterns = [
    *both_slashes("customer-loan", views.CreateLoanView.as_view(), "customer-loan"),
    *both_slashes("approve-reject-loan/<int:loan_id>", views.DecideLoanView.as_view(), "approve-reject-loan"),
    *both_slashes("edit-loan/<int:loan_id>", views.EditLoanView.as_view(), "edit-loan"),
    *both_slashes("list-loans-admin-agent", views.ListLoansView.as_view(), "list-loans-admin-agent"),
    *both_slashes("list-loans-customer", views.ListCustomerLoansView.as_view(), "list-loans-customer"),
    *both_slashes("quote", views.QuoteView.as_view(), "quote"),
    *both_slashes("<int:loan_id>", views.LoanDetailView.as_view(), "loan"),
    *both_slashes("<int:loan_id>/schedule", views.LoanScheduleView.as_view(), "loan-schedule"),
    *both_slashes("<int:loan_id>/history", views.LoanHistoryView.as_view(), "loan-history"),
]
