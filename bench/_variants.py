"""What is added to the hello-world apps: nothing, td_web, or one of its peers.

Each variant gets hooks for the three ways apps are built in :mod:`_apps` (ASGI, Flask,
Django). Every SDK is pointed at the local sink under a path of its own (``/td_web``,
``/posthog``, ``/sentry``, ``/otel``, ``/apitally``), so nothing leaves the loopback address
and the sink can tell who sent what. A variant whose package is missing is skipped with the
reason.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

APP_ID = "B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE"
SALT = "bench-salt-bench-salt"
#: apitally checks the token's shape; this one is valid in form and known to nobody.
APITALLY_TOKEN = "apt_benchbenchbenchbenchbenc"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class Variant:
    name = "bare"
    label = "bare"
    #: Packages that must be importable.
    requires: tuple[str, ...] = ()
    #: The view sends one custom signal per request.
    custom_signal = False
    #: Every request comes from a new visitor (no cookie): td_web starts a session each time.
    new_visitor = False

    def missing(self) -> str | None:
        absent = [p for p in self.requires if importlib.util.find_spec(p) is None]
        return f"not installed: {', '.join(absent)} (pip install -e '.[bench]')" if absent else None

    def setup(self, sink: str, framework: str) -> None:
        """Process-wide initialisation, before the app is built."""

    def asgi(self, app: Any, sink: str, framework: str) -> None:
        """Starlette or FastAPI: add middleware / initialise on the app."""

    def flask(self, app: Any, sink: str) -> None:
        """Flask: extensions, hooks."""

    def django_settings(self, settings: dict[str, Any], sink: str) -> None:
        """Django: change the settings before ``settings.configure()``."""

    def django_ready(self, sink: str) -> None:
        """Django: after ``settings.configure()``, before the handler loads its middleware."""

    def loop_started(self, driver: Any) -> None:
        """ASGI: the app is built and its event loop exists."""

    def flush(self) -> None:
        """Deliver what the SDK holds, as at a graceful exit (td_web's senders are flushed
        by the worker itself)."""

    def events_made(self, served: int) -> int | None:
        """The events this SDK made for ``served`` requests, when it can tell (None: it sends
        no per-request events, or aggregates them)."""
        return None


class TdWeb(Variant):
    name = "td_web"
    label = "td_web (auto signal)"
    requires = ("td_web",)

    def options(self, sink: str) -> dict[str, Any]:
        return {"app_id": APP_ID, "salt": SALT, "endpoint": f"{sink}/td_web"}

    def asgi(self, app: Any, sink: str, framework: str) -> None:
        from td_web.asgi import TelemetryDeckMiddleware

        app.add_middleware(TelemetryDeckMiddleware, **self.options(sink))

    def flask(self, app: Any, sink: str) -> None:
        from td_web.flask import TelemetryDeck

        for name, value in self.options(sink).items():
            app.config[f"TELEMETRYDECK_{name.upper()}"] = value
        TelemetryDeck().init_app(app)

    def django_settings(self, settings: dict[str, Any], sink: str) -> None:
        settings["MIDDLEWARE"].insert(0, "td_web.django.TelemetryDeckMiddleware")
        settings["TELEMETRYDECK"] = {k.upper(): v for k, v in self.options(sink).items()}


class TdWebSignal(TdWeb):
    name = "td_web+signal"
    label = "td_web + 1 custom signal"
    custom_signal = True


class TdWebNewVisitor(TdWeb):
    name = "td_web-new"
    label = "td_web, new visitor each request"
    new_visitor = True


class TdWebIdleSender(TdWeb):
    """td_web whose sender thread sleeps through the batch (no batch fills, the interval is
    an hour; everything is sent at the final flush): the request thread's own cost, without
    the sender's work on the same interpreter lock and caches in between."""

    name = "td_web-idle-sender"
    label = "td_web, sender idle until the flush"

    def options(self, sink: str) -> dict[str, Any]:
        return {
            **super().options(sink),
            "max_batch_size": 1_000_000,
            "flush_interval": 3600.0,
            "max_queue_size": 1_000_000,
            "max_queue_bytes": 10**10,
        }


class TdWebSampledOut(TdWeb):
    """td_web with the driver's visitor in a sampled-out session: the session is still
    resolved, hashed for the decision and its cookie kept, but nothing is queued."""

    name = "td_web-sampled-out"
    label = "td_web, session sampled out"

    def options(self, sink: str) -> dict[str, Any]:
        from _drive import SESSION_TOKEN

        from td_web._web.sampling import session_fraction

        # Just below the visitor's own fraction: sampled out, after the full decision.
        rate = session_fraction(SESSION_TOKEN) * 0.99
        return {**super().options(sink), "sample_rate": rate}


class Posthog(Variant):
    """The naive integration: a small middleware calling ``capture()`` once per request."""

    name = "posthog"
    label = "posthog capture()"
    requires = ("posthog",)
    client: Any = None

    def flush(self) -> None:
        Posthog.client.flush()

    def events_made(self, served: int) -> int | None:
        return served  # one capture() per request

    def setup(self, sink: str, framework: str) -> None:
        from posthog import Posthog as Client

        Posthog.client = Client("phc_bench", host=f"{sink}/posthog")

    def asgi(self, app: Any, sink: str, framework: str) -> None:
        app.add_middleware(PosthogASGIMiddleware, client=Posthog.client)

    def flask(self, app: Any, sink: str) -> None:
        from flask import request

        client = Posthog.client

        @app.after_request
        def capture(response: Any) -> Any:
            client.capture(
                "http_request",
                distinct_id=request.cookies.get("td_session") or "anonymous",
                properties={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                },
            )
            return response

    def django_settings(self, settings: dict[str, Any], sink: str) -> None:
        settings["MIDDLEWARE"].insert(0, "_variants.PosthogDjangoMiddleware")


def _posthog_capture(distinct_id: str, method: str, path: str, status: int) -> None:
    Posthog.client.capture(
        "http_request",
        distinct_id=distinct_id,
        properties={"method": method, "path": path, "status": status},
    )


class PosthogASGIMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], client: Any):
        self.app = app
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_status)
        cookie = dict(scope["headers"]).get(b"cookie", b"").decode("latin-1")
        _posthog_capture(cookie or "anonymous", scope["method"], scope["path"], status)


class PosthogDjangoMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        self._capture(request, response)
        return response

    async def _acall(self, request: Any) -> Any:
        response = await self.get_response(request)
        self._capture(request, response)
        return response

    @staticmethod
    def _capture(request: Any, response: Any) -> None:
        distinct_id = request.COOKIES.get("td_session") or "anonymous"
        _posthog_capture(distinct_id, request.method, request.path, response.status_code)


class Sentry(Variant):
    """sentry-sdk with its default integrations and tracing off (no ``traces_sample_rate``)."""

    name = "sentry"
    label = "sentry-sdk, tracing off"
    requires = ("sentry_sdk",)

    def setup(self, sink: str, framework: str) -> None:
        import sentry_sdk

        sink_url = urlsplit(sink)
        sentry_sdk.init(dsn=f"http://public@{sink_url.netloc}/sentry/1")

    def flush(self) -> None:
        import sentry_sdk

        sentry_sdk.flush(30)


class OpenTelemetry(Variant):
    """The OpenTelemetry SDK, a batch span processor and the OTLP/HTTP exporter, with the
    framework's instrumentation (Starlette and FastAPI: the ASGI middleware)."""

    name = "otel"
    label = "OpenTelemetry, batch processor"
    requires = (
        "opentelemetry.sdk",
        "opentelemetry.exporter.otlp.proto.http",
        "opentelemetry.instrumentation.asgi",
        "opentelemetry.instrumentation.flask",
        "opentelemetry.instrumentation.django",
    )

    def setup(self, sink: str, framework: str) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{sink}/otel/v1/traces"))
        )
        provider.add_span_processor(_span_counter())
        trace.set_tracer_provider(provider)
        OpenTelemetry.provider = provider

    provider: Any = None
    #: Spans that ended (and so went to the batch processor): what OpenTelemetry made.
    ended = 0

    def flush(self) -> None:
        OpenTelemetry.provider.force_flush(30_000)

    def events_made(self, served: int) -> int | None:
        return OpenTelemetry.ended

    def asgi(self, app: Any, sink: str, framework: str) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app.add_middleware(OpenTelemetryMiddleware)

    def flask(self, app: Any, sink: str) -> None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(app)

    def django_ready(self, sink: str) -> None:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument()


def _span_counter() -> Any:
    """A span processor that only counts the spans that ended."""
    from opentelemetry.sdk.trace import SpanProcessor

    class SpanCounter(SpanProcessor):
        def on_end(self, span: Any) -> None:
            OpenTelemetry.ended += 1

    return SpanCounter()


class Apitally(Variant):
    """apitally with its OTLP endpoint at the sink (it batches and exports on a thread)."""

    name = "apitally"
    label = "apitally"
    requires = ("apitally",)

    def options(self, sink: str) -> dict[str, Any]:
        return {"write_token": APITALLY_TOKEN, "otlp_endpoint": f"{sink}/apitally"}

    def asgi(self, app: Any, sink: str, framework: str) -> None:
        if framework == "fastapi":
            from apitally.fastapi import init
        else:
            from apitally.starlette import init
        init(app, **self.options(sink))

    def flask(self, app: Any, sink: str) -> None:
        from apitally.flask import init

        init(app, **self.options(sink))

    def django_ready(self, sink: str) -> None:
        from apitally.django import init

        init(**self.options(sink))


class NoOpHooks(Variant):
    """The framework's own floor for what td_web does: the same hooks, doing nothing.

    ASGI: a pure middleware with a per-call object, a context variable, a ``state`` entry and
    wrapped ``receive`` and ``send`` that read the response start and add one fixed
    ``Set-Cookie`` header. Flask: a WSGI middleware around ``wsgi_app`` wrapping
    ``start_response`` (adding the header) and a ``before_request`` hook setting an attribute
    on the request. Django: a middleware that sets an attribute on the request and adds the
    header. What td_web adds beyond this variant is its own work."""

    name = "noop"
    label = "no-op hooks (the framework's floor)"

    def asgi(self, app: Any, sink: str, framework: str) -> None:
        app.add_middleware(NoOpASGIMiddleware)

    def flask(self, app: Any, sink: str) -> None:
        from flask import request

        def before() -> None:
            request.telemetry = None  # type: ignore[attr-defined]

        app.before_request_funcs.setdefault(None, []).insert(0, before)
        app.wsgi_app = NoOpWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    def django_settings(self, settings: dict[str, Any], sink: str) -> None:
        settings["MIDDLEWARE"].insert(0, "_variants.NoOpDjangoMiddleware")


_NOOP_COOKIE = "td_session=q2Jm0eTYrW1xH8vN3kLp5cZa; Max-Age=1800; Path=/; SameSite=Lax; HttpOnly"
_noop_current: Any = None


def _noop_context() -> Any:
    global _noop_current
    if _noop_current is None:
        import contextvars

        _noop_current = contextvars.ContextVar("noop", default=None)
    return _noop_current


class NoOpCall:
    __slots__ = ("_receive", "_send", "status")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.status = None

    async def receive(self) -> Any:
        return await self._receive()

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers") or ()
            message = {
                **message,
                "headers": [*headers, (b"set-cookie", _NOOP_COOKIE.encode("latin-1"))],
            }
        await self._send(message)


class NoOpASGIMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        call = NoOpCall(receive, send)
        scope.setdefault("state", {})["telemetry"] = call
        current = _noop_context()
        token = current.set(call)
        try:
            await self.app(scope, call.receive, call.send)
        finally:
            current.reset(token)


class NoOpWSGIMiddleware:
    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(("Set-Cookie", _NOOP_COOKIE))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


class NoOpDjangoMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        request.telemetry = None
        response = self.get_response(request)
        response.headers["X-Noop"] = _NOOP_COOKIE  # one header, as td_web's cookie is one
        return response


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(),
        TdWeb(),
        TdWebSignal(),
        TdWebNewVisitor(),
        TdWebSampledOut(),
        TdWebIdleSender(),
        Posthog(),
        Sentry(),
        OpenTelemetry(),
        Apitally(),
        NoOpHooks(),
    )
}
PEERS = ("posthog", "sentry", "otel", "apitally")
