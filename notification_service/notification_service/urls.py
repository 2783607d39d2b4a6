from django.urls import include, path

from common.urls import handler400, handler403, handler404, handler500, service_urlpatterns
from notifications.api.views import InboxView

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/notifications", InboxView.as_view()),  # API.md: with and without the trailing slash
    path("api/notifications/", include("notifications.api.urls")),
    *service_urlpatterns(),
]
