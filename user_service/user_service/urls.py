from django.urls import include, path

from common.urls import handler400, handler403, handler404, handler500, service_urlpatterns
from users.api.urls import internal_urlpatterns, public_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/user/", include(public_urlpatterns)),
    path("internal/", include(internal_urlpatterns)),
    *service_urlpatterns(),
]
