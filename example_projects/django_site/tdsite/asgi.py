"""The ASGI entry point: ``uvicorn tdsite.asgi:application`` (from this directory).

td_web's wrapper adds the lifespan protocol to Django's ASGI application, so that uvicorn's
shutdown delivers the signals still queued (see ``td_web.django.asgi``).
"""

from __future__ import annotations

import os

from td_web.django.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdsite.settings")
application = get_asgi_application()
