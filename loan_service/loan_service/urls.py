from django.urls import include, path

from common.urls import handler400, handler403, handler404, handler500, service_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/loan/", include("loans.api.urls")),
    *service_urlpatterns(),
]
