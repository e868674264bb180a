"""The site's Celery app: ``celery -A tdsite worker`` (needs ``pip install "td_web[celery]"``).

``td_web.celery.setup(app)`` reads ``TELEMETRYDECK`` (and ``TELEMETRYDECK_CELERY``) from the
settings. A task sent from a view carries the visitor's derived session ID and clientUser
hash, so the signals the task sends count for that visitor and session.
"""

from __future__ import annotations

import os

from celery import Celery

import td_web
import td_web.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdsite.settings")

app = Celery("tdsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
td_web.celery.setup(app)


@app.task(name="tdsite.build_invoice")
def build_invoice(items: int) -> int:
    """Stands for slow work a view hands off: rendering and mailing an invoice."""
    td_web.current().signal("Invoice.built", {"Invoice.items": items})
    return items
