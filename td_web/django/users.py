"""Which user a request belongs to, without ever costing the request a query.

``request.user`` is lazy in Django: reading it loads the session and the user (one or two
queries, and an error inside an async view). td_web only uses a user the request has already
loaded, because an analytics signal must not add database work to requests that did not need
it. A user counts as loaded when

- ``request.user`` was evaluated (the view, a decorator such as ``login_required`` or a template
  used it), or
- ``await request.auser()`` ran (Django 5.0+; async views), or
- something assigned ``request.user`` directly (``login()``, Django REST framework's
  authentication, a custom middleware).

Otherwise the request counts as anonymous: its signals carry the session-derived anonymous user.
To attribute a signal in a view that never touches the user, pass ``client_user=`` to
``request.telemetry.signal()`` or set ``TELEMETRYDECK["CLIENT_USER"]`` to a callable.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import LazyObject, empty


def loaded_user_id(request: HttpRequest) -> object:
    """The primary key of the request's authenticated user if it is already loaded, else None."""
    attributes = request.__dict__
    user = attributes.get("user")
    if user is None:  # no AuthenticationMiddleware (or not reached yet) and no login()
        return None
    if isinstance(user, LazyObject):
        user = user._wrapped
        if user is empty:
            user = attributes.get("_acached_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "pk", None)
