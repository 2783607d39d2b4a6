from django.urls import include, path

from common.api import both_slashes
from common.urls import handler400, handler403, handler404, handler500, service_urlpatterns
from notifications.api.views import InboxView

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    # The inbox is the prefix itself, so its two routes are here rather than in notifications.api.urls.
    *both_slashes("api/notifications", InboxView.as_view(), "inbox"),
    path("api/notifications/", include("notifications.api.urls")),
    *service_urlpatterns(),
]
