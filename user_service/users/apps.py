from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import common.openapi  # noqa: F401 - registers the bearer JWT scheme in the OpenAPI document
        from users import metrics

        metrics.register()  # the business metrics on /metrics


class UsersAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin`, its default site the one whose login form is throttled (users.admin_site)."""

    default = False  # named in INSTALLED_APPS; UsersConfig stays the default of this module
    default_site = "users.admin_site.ThrottledAdminSite"
