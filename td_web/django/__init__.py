"""td_web for Django (4.2 LTS and newer; WSGI and ASGI).

Setup::

    INSTALLED_APPS += ["td_web.django"]          # optional: system checks (label "td_web")
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "td_web.django.TelemetryDeckMiddleware",  # first, or right after SecurityMiddleware
        ...
    ]
    TELEMETRYDECK = {"APP_ID": "...", "SALT": "..."}

Views get ``request.telemetry`` (``td_web.current()`` returns the same helper anywhere inside
the request)::

    from td_web.django import TelemetryHttpRequest

    def checkout(request: TelemetryHttpRequest) -> HttpResponse:
        request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)

Settings
    ``TELEMETRYDECK`` keys are td_web's option names in upper case: the client's (``APP_ID``,
    ``SALT``, ``ENDPOINT``, ``NAMESPACE``, ``TEST_MODE``, ``ENABLED``, ``APP_VERSION``,
    ``DEFAULT_PAYLOAD``, ``FLUSH_INTERVAL``, ``SHUTDOWN_TIMEOUT``, ...), the request
    telemetry's (``SESSION_COOKIE_NAME``, ``COOKIELESS``, ``RESPECT_GPC``, ``EXCLUDE_PATHS``,
    ``EXCLUDE_PATTERNS``, ``EXCLUDE``, ``CLIENT_USER``, ``PAGE_VIEW_SIGNAL``, ...), and
    ``CLIENT`` (an existing ``td_web.TelemetryDeck``). Users in control (README): ``BEFORE_SEND``,
    ``BEFORE_SEND_ERRORS``, ``SAMPLE_RATE``, ``SAMPLER``, ``CONSENT_REQUIRED``,
    ``CONSENT_COOKIE_NAME``, ``RESPECT_DNT``, ``EXCLUDE_STATUS``, ``EXCLUDE_ROUTES``,
    ``TRUSTED_PROXIES``, and ``DEFAULT_PAYLOAD`` as a callable given the ``HttpRequest``; views
    call ``request.telemetry.opt_out()`` / ``opt_in()`` or ``td_web.opt_out(response)``.
    A missing or None key falls back to the ``TELEMETRYDECK_*`` environment variable, then to
    the default; ``TEST_MODE`` defaults to ``DEBUG``. Unknown keys are a
    ``td_web.ConfigurationError``. Settings are read on the first request and again after
    ``override_settings`` changes them (the replaced client is closed once the requests in
    flight with it have finished, so none of their signals is lost). Without ``SALT``,
    session derivations are keyed with a one-way derivation of ``SECRET_KEY``.

    Invalid settings never break the site: the middleware logs the problem once and lets
    requests through untracked (``request.telemetry`` then sends nothing); ``manage.py check``
    reports it (``td_web.E001`` no app id, ``E002`` unknown keys, ``E003`` invalid value,
    ``W001`` malformed app id, ``W002`` middleware placed after one that answers requests
    itself, ``W003`` middleware missing, ``W004`` middleware inside the per-site cache, which
    would store the session cookie). With ``ENABLED: False`` the middleware does nothing.

What is recorded
    A ``pageView`` for successful HTML GETs, ``HTTP.request`` for everything else, with
    ``HTTP.route`` from Django's resolver (``/shop/{shop}/items/{item_id}/``, including
    ``include()`` prefixes; the language prefix of ``i18n_patterns()`` becomes
    ``{language}``; none when nothing matched). Streaming responses are recorded when their
    body ends. Exceptions of views (other than those Django answers with a 4xx) add
    ``TelemetryDeck.Error.occurred``; Django's own 500 handling is untouched. ``STATIC_URL``
    and ``MEDIA_URL`` are never tracked.

Users
    td_web never loads ``request.user`` itself: that would add a session and a user query to
    every request. A request counts as its user's when the view (or a decorator such as
    ``login_required``, a template, ``login()``, Django REST framework's authentication, or
    ``await request.auser()``) already loaded an authenticated user; otherwise its signals
    carry the session's anonymous stand-in. Pass ``client_user=`` to ``signal()``, or set
    ``CLIENT_USER`` to a callable taking the request, to decide otherwise.

Shutdown
    Queued signals are delivered at exit. Where SIGTERM is left at its default (``runserver
    --noreload``), td_web's handler delivers them first and then lets SIGTERM end the process
    as before (``HANDLE_SIGTERM: False`` keeps the plain default).

ASGI
    uvicorn ends its graceful shutdown by re-raising SIGTERM, so atexit handlers never run;
    ``td_web.django.asgi.get_asgi_application()`` (instead of Django's) delivers queued signals
    during the lifespan shutdown, before that (harmless under every other server).
"""

from __future__ import annotations

from .middleware import TelemetryDeckMiddleware
from .request import TelemetryHttpRequest
from .runtime import get_web_telemetry

__all__ = ["TelemetryDeckMiddleware", "TelemetryHttpRequest", "get_web_telemetry"]
