"""WSGI entry point: gunicorn serves the gateway (see manage_all.py and benchmarks/gateway_overhead.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
application = get_wsgi_application()
