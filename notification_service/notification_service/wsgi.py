import os

from django.core.wsgi import get_wsgi_application

from common.tracing import configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notification_service.settings")
configure_tracing("notification_service")  # before the application loads its middleware: tracing's goes first
application = get_wsgi_application()
