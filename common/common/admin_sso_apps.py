"""django.contrib.admin whose default site signs in through user_service with the second factor.

In INSTALLED_APPS instead of "django.contrib.admin" (a separate module: an AppConfig is imported before
the models are ready, and common.admin_sso needs them).
"""

from django.contrib.admin.apps import AdminConfig


class SSOAdminConfig(AdminConfig):
    """The admin of loan_service and notification_service: its login form asks for the authentication code."""

    default_site = "common.admin_sso.SSOAdminSite"
