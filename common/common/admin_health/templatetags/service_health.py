"""`{% service_health_panel %}`: the health panel, rendered from common.admin_health.checks."""

from django import template

from common.admin_health.checks import service_health

register = template.Library()


@register.inclusion_tag("admin_health/panel.html", takes_context=True)
def service_health_panel(context) -> dict:
    """The panel for active staff, nothing (and no check run) for anyone else, wherever the tag is used."""
    user = getattr(context.get("request"), "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {}
    return service_health()
