from django.apps import AppConfig


class LoansConfig(AppConfig):
    name = "loans"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import common.openapi  # noqa: F401 - registers the bearer JWT scheme in the OpenAPI document
        from loans import metrics

        metrics.register()  # the business metrics on /metrics
