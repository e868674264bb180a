"""The sender side of a handled request: the record it is queued as (``RequestSignals``),
expanded on the sender thread into its automatic signals or written as their JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import isfinite
from typing import TYPE_CHECKING, Any

from .._before_send import RequestOrigin
from .._sanitize import MAX_KEYS
from .._signal import RECORD_OVERHEAD, Signal, SignalBuilder
from .._signal_json import KEPT_HEADER_LENGTH, OwnJSON, own_json
from .payload import plain_json, plain_payload, request_payload
from .payload_json import DURATION_TO_FLOAT
from .visitors import NEW_VISITOR_SIGNAL

if TYPE_CHECKING:
    from .._signal_json import SignalJSON
    from . import RequestView, WebTelemetry
    from .visitors import Visit


class RequestSignals:
    """One handled request, expanded on the sender thread into its automatic signals.

    It waits in the queue (maybe through a long outage), so it holds only what it needs, each
    string bounded: ``view`` is ``RequestView.for_queue()`` (no cookies, no address, only the
    campaign parameters of the query string).
    """

    __slots__ = (
        "duration",
        "error_id",
        "error_message",
        "excluded",
        "extra_payload",
        "new_session",
        "page_view",
        "route",
        "session_key",
        "status",
        "user",
        "view",
        "visit",
        "web",
    )

    def __init__(
        self,
        web: WebTelemetry,
        view: RequestView,
        status: int,
        route: str | None,
        duration: float,
        page_view: bool,
        user: str | None,
        session_key: str | None,
        new_session: bool,
        error_id: str | None,
        error_message: str | None,
        extra_payload: Mapping[str, Any] | None = None,
        excluded: bool = False,
        visit: Visit | None = None,
    ) -> None:
        self.web = web
        self.visit = visit
        self.view = view
        self.status = status
        self.route = route
        self.duration = duration
        self.page_view = page_view
        self.user = user
        self.session_key = session_key
        self.new_session = new_session
        self.error_id = error_id
        self.error_message = error_message
        #: Per-request properties and the sample rate, under each signal's own keys.
        self.extra_payload = extra_payload
        #: exclude_status / exclude_routes matched: only a session start is sent.
        self.excluded = excluded

    def approx_size(self) -> int:
        """About how many bytes of text this record keeps (the queue's byte budget)."""
        # Spelled out, and the view's size as for_queue counted it: this runs on the request
        # thread for every request (a loop over a tuple and the view's method call were half
        # of its 3,300 instructions).
        view = self.view
        size = view.queued_size
        if size is None:
            size = view.approx_size()
        route, user, key = self.route, self.user, self.session_key
        size += RECORD_OVERHEAD + (0 if route is None else len(route))
        size += (0 if user is None else len(user)) + (0 if key is None else len(key))
        if self.error_id is not None:
            size += len(self.error_id) + len(self.error_message or "")
        return size

    def signals(self, builder: SignalBuilder) -> Iterable[Signal]:
        settings = self.web.settings
        view = self.view
        signal_type, route, path, payload = self._request_payload()
        built: list[Signal | None] = []
        user, key, extra = self.user, self.session_key, self.extra_payload
        # Device, country and visitor keys, td_web's own clean text; None: a crawler the
        # User-Agent library knows and the request-path list missed.
        derived = self.web.dashboard.request_keys(view, payload)
        if derived is not None and self.visit is not None:
            derived.update(self.visit.keys)
        if derived is not None and self.new_session and settings.session_started_signal:
            built.append(
                builder.build(
                    settings.session_started_signal,
                    None,
                    clean_payload=derived,
                    extra_payload=extra,
                    client_user=user,
                    session_key=key,
                )
            )
        if derived is not None and self.visit is not None and self.visit.first_visit:
            built.append(
                builder.build(
                    NEW_VISITOR_SIGNAL,
                    None,
                    clean_payload=derived,
                    extra_payload=extra,
                    client_user=user,
                    session_key=key,
                )
            )
        origin = (
            RequestOrigin(view.method, path, route, self.status)
            if builder.before_send is not None
            else None
        )
        if self.excluded:
            return builder.release(built, origin)
        if self.error_id is not None and settings.error_signal:
            error_payload = self._error_payload(self.error_id, route, path)
            plain = plain_payload(error_payload)
            built.append(
                builder.build(
                    settings.error_signal,
                    None if plain else error_payload,
                    client_user=user,
                    session_key=key,
                    extra_payload=extra,
                    clean_own_payload=error_payload if plain else None,
                )
            )
        if signal_type and derived is not None:
            plain = plain_payload(payload)
            built.append(
                builder.build(
                    signal_type,
                    None if plain else payload,
                    extra_payload=extra,
                    clean_payload=derived,
                    client_user=user,
                    session_key=key,
                    clean_own_payload=payload if plain else None,
                )
            )
        return builder.release(built, origin)

    def _request_payload(self) -> tuple[str | None, str | None, str, dict[str, Any]]:
        """The type of the request's own signal (page view or request; None: not sent), its
        route and path as sent, and its payload."""
        settings = self.web.settings
        view = self.view
        redactor = self.web.redactor
        route = redactor.path(self.web.normalize_route(self.route)) if self.route else None
        path = redactor.path(view.path)
        signal_type = settings.page_view_signal if self.page_view else settings.request_signal
        payload = (
            request_payload(
                method=view.method,
                status=self.status,
                route=route,
                scheme=view.scheme,
                host=view.host,
                path=path,
                query_string=view.query_string,
                referer=view.referer,
                accept_language=view.accept_language,
                duration=self.duration,
                page_view=self.page_view,
                clean_referer_path=redactor.encoded_path,
            )
            if signal_type
            else {}
        )
        return signal_type, route, path, payload

    def _error_payload(self, error_id: str, route: str | None, path: str) -> dict[str, str]:
        payload = {
            "TelemetryDeck.Error.id": error_id,
            "TelemetryDeck.Error.category": "thrown-exception",
            "HTTP.method": self.view.method,
            "path": path,
        }
        if route is not None:
            payload["HTTP.route"] = route
        if self.error_message is not None:
            payload["TelemetryDeck.Error.message"] = self.error_message
        return payload

    def encoded_signals(self, writer: SignalJSON) -> list[bytes] | None:
        """What :meth:`signals` gives, written as JSON from parts encoded once (the same keys
        in the same order, the same values); None when this request takes that path instead:
        an excluded response (rare), a value the sanitizer would change or report, a key two
        parts share."""
        if self.excluded:
            return None
        if self.visit is None and self.extra_payload is None and self.error_id is None:
            # The usual request (no error, visitor keys or properties) of a browser seen
            # before: its signals' JSON from two kept parts, the browser's and the request
            # shape's, around what is its own (session ids, duration), without the calls
            # that find them one by one (valgrind, site mix: 43,350 -> 26,620 per page view
            # with the request shape kept whole, PayloadJSON.own_parts).
            web = self.web
            view = self.view
            kept = writer.kept((web.kept_key, view.user_agent))
            if kept is not None:
                page_view = self.page_view
                type_part = kept.page_type if page_view else kept.request_type
                parts = web.payload_json.own_parts(view, self.route, self.status, page_view)
                duration = self.duration
                if (
                    parts is not None
                    and type_part is not None
                    and type(duration) is float
                    and isfinite(duration)
                    and kept.key_count + parts.key_count <= MAX_KEYS
                    and (not kept.taken or all(map(kept.taken.isdisjoint, parts.keys)))
                ):
                    ids = writer.ids(self.user, self.session_key)
                    head = writer.head
                    float_json = b"%.6f" % duration
                    page = b"".join(
                        (
                            head,
                            ids,
                            type_part,
                            kept.shared,
                            b",",
                            parts.head,
                            b"%.3f" % duration,
                            DURATION_TO_FLOAT,
                            float_json,
                            parts.tail,
                            b'},"floatValue":',
                            float_json,
                            b"}",
                        )
                    )
                    if self.new_session and kept.start_type is not None:
                        start = b"".join((head, ids, kept.start_type, kept.shared, b"}}"))
                        return [start, page]
                    return [page]
        return self._encoded(writer)

    def _encoded(self, writer: SignalJSON) -> list[bytes] | None:
        """:meth:`encoded_signals` from the parts; a usual request's browser part is kept for
        the next request of that browser."""
        web = self.web
        settings = web.settings
        view = self.view
        page_view = self.page_view
        signal_type = settings.page_view_signal if page_view else settings.request_signal
        own: OwnJSON | None = None
        if signal_type:
            # The request's own payload from parts kept per request shape (PayloadJSON); a
            # value too long to keep: built as signals() does.
            own = web.payload_json.own(view, self.route, self.status, self.duration, page_view)
        if own is None and signal_type:
            payload = self._request_payload()[3]
            keys = web.dashboard.request_parts(view, payload)
            own = own_json(payload)
            if not plain_json(payload, own.members):
                return None
        else:
            keys = web.dashboard.request_parts(view, {})  # (the query's keys are in ``own``)
        error_type = settings.error_signal
        error_id = self.error_id if error_type else None
        if keys is None:
            # A crawler the User-Agent library knows: no signal, as in signals() (where an
            # error of its request still is one: rare enough for that path).
            return [] if error_id is None else None
        visit = self.visit
        extra = self.extra_payload
        shared = writer.shared(
            view.user_agent, keys[0], keys[1], None if visit is None else visit.keys, extra
        )
        if shared is None:
            return None
        # The session start, a first visit and the page view share everything but their own
        # payload: joined once above, for all of them.
        ids = writer.ids(self.user, self.session_key)
        written: list[bytes | None] = []
        start_type = settings.session_started_signal
        if self.new_session and start_type:
            written.append(writer.signal(start_type, ids, shared))
        if visit is not None and visit.first_visit:
            written.append(writer.signal(NEW_VISITOR_SIGNAL, ids, shared))
        if error_id is not None and error_type:
            written.append(self._written_error(writer, error_type, error_id, ids))
        if signal_type:
            written.append(writer.signal(signal_type, ids, shared, own))
        if None in written:
            return None
        if (
            visit is None
            and extra is None
            and self.error_id is None
            and not web.dashboard.geo.enabled  # (country keys differ from request to request)
            and len(view.user_agent or "") <= KEPT_HEADER_LENGTH
        ):
            writer.keep(
                (web.kept_key, view.user_agent),
                shared,
                start_type or None,
                settings.page_view_signal or None,
                settings.request_signal or None,
            )
        return written  # type: ignore[return-value]  # none None

    def _written_error(
        self,
        writer: SignalJSON,
        error_type: str,
        error_id: str,
        ids: bytes,
    ) -> bytes | None:
        """The error signal: as in :meth:`signals`, without the device, country and visitor
        keys."""
        view = self.view
        page = self.web.payload_json.page(
            view.method, self.status, view.scheme, view.host, self.route, view.path
        )
        if page is None:  # too long to keep
            route, path = self._request_payload()[1:3]
        else:
            route, path = page.route, page.path
        error_payload = self._error_payload(error_id, route, path)
        error_json = own_json(error_payload)
        if not plain_json(error_payload, error_json.members):
            return None
        bare = writer.shared(None, _NO_KEYS, _NO_KEYS, None, self.extra_payload)
        if bare is None:
            return None
        return writer.signal(error_type, ids, bare, error_json)


_NO_KEYS: Mapping[str, str] = {}
