"""WSGI entry point (waitress in ``jicai serve``, or any WSGI server)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jicai.settings")
application = get_wsgi_application()
