from django.contrib import admin
from django.urls import include, path

from common.urls import handler400, handler403, handler404, handler500, service_urlpatterns
from loans.dashboard import dashboard_view

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/loan/", include("loans.api.urls")),
    # Before the admin's own URLs (service_urlpatterns), inside its sign-in.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="loans_dashboard"),
    *service_urlpatterns(),
]
