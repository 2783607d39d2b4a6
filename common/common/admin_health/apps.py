from django.apps import AppConfig


class AdminHealthConfig(AppConfig):
    name = "common.admin_health"
    label = "admin_health"
    verbose_name = "Service health (admin index)"
