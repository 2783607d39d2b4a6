from common.api import both_slashes
from common.audit.views import AuditListView
from users.api import api_key_views as keys
from users.api import views
from users.api.internal import InternalUserView

public_urlpatterns = [
    *both_slashes("signup", views.SignupView.as_view(), "signup"),
    *both_slashes("login", views.LoginView.as_view(), "login"),
    *both_slashes("token/refresh", views.TokenRefreshView.as_view(), "token-refresh"),
    *both_slashes("logout", views.LogoutView.as_view(), "logout"),
    *both_slashes("profile", views.ProfileView.as_view(), "profile"),
    *both_slashes("change-password", views.ChangePasswordView.as_view(), "change-password"),
    *both_slashes("create-admin", views.CreateAdminView.as_view(), "create-admin"),
    *both_slashes("list-agents", views.ListCustomersView.as_view(), "list-agents"),
    *both_slashes("list-users", views.ListUsersView.as_view(), "list-users"),
    *both_slashes("list-approvals", views.ListApprovalsView.as_view(), "list-approvals"),
    *both_slashes("approve-delete/<int:user_id>", views.ApproveDeleteAgentView.as_view(), "approve-delete"),
    *both_slashes(".well-known/jwks.json", views.JwksView.as_view(), "jwks"),
    *both_slashes("login/mfa", views.LoginSecondFactorView.as_view(), "login-mfa"),
    *both_slashes("login/mfa/enrol", views.LoginEnrolView.as_view(), "login-mfa-enrol"),
    *both_slashes("mfa/totp", views.TotpView.as_view(), "mfa-totp"),
    *both_slashes("mfa/totp/confirm", views.TotpConfirmView.as_view(), "mfa-totp-confirm"),
    *both_slashes("mfa/totp/disable", views.TotpDisableView.as_view(), "mfa-totp-disable"),
    *both_slashes("mfa/recovery-codes", views.RecoveryCodesView.as_view(), "mfa-recovery-codes"),
    *both_slashes("mfa/reset/<int:user_id>", views.MfaResetView.as_view(), "mfa-reset"),
    *both_slashes("sessions", views.SessionsView.as_view(), "sessions"),
    *both_slashes("sessions/<uuid:session_id>", views.SessionDetailView.as_view(), "session-detail"),
    *both_slashes("audit", AuditListView.as_view(), "audit"),
    *both_slashes("api-keys", keys.ApiKeysView.as_view(), "api-keys"),
    *both_slashes("api-keys/<int:api_key_id>", keys.ApiKeyDetailView.as_view(), "api-key"),
    *both_slashes("api-keys/<int:api_key_id>/rotate", keys.RotateApiKeyView.as_view(), "api-key-rotate"),
]

internal_urlpatterns = [
    *both_slashes("users/<int:user_id>", InternalUserView.as_view(), "internal-user"),
    *both_slashes("api-keys/exchange", keys.ExchangeApiKeyView.as_view(), "internal-api-key-exchange"),
]
