import os

from django.core.asgi import get_asgi_application

from common.tracing import configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loan_service.settings")
configure_tracing("loan_service")  # before the application loads its middleware: tracing's goes first
application = get_asgi_application()
