"""td_web.celery end to end: a real Redis broker, real `celery worker` processes (prefork), a
Flask app sending tasks from its views, and the real local ingest server receiving both."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult
from conftest import APP_ID
from flask import Flask, request
from ingest_server import IngestServer, free_port
from test_celery.celery_project import WORKER_SALT, make_app
from test_celery.celery_support import Worker

import td_web.celery
from td_web import TelemetryDeck, hash_client_user
from td_web.flask import TelemetryDeck as FlaskTelemetryDeck

pytestmark = pytest.mark.slow

WEB_SALT = "web-salt"
CANARY = "canary-4cf1e0d2-task-argument"
StartWorker = Callable[..., Worker]


@pytest.fixture
def broker(redis_url: str) -> str:
    """An empty broker for each test: no task of an earlier test reaches this one's worker."""
    with redis.Redis.from_url(redis_url) as connection:
        connection.flushall()
    return redis_url


class CelerySide:
    """The broker, workers started on it, and the web side (its Celery app and td_web client,
    built at first use: a test of a web side without td_web must not have td_web's hooks)."""

    def __init__(self, broker: str, ingest: IngestServer, start_worker: StartWorker) -> None:
        self.broker = broker
        self.ingest = ingest
        self._start_worker = start_worker

    def start_worker(self, **options: str) -> Worker:
        return self._start_worker(self.broker, self.ingest.url, **options)

    @functools.cached_property
    def app(self) -> Celery:
        """The web side's Celery app (sends tasks; td_web carries the request's context)."""
        return make_app(self.broker, self.ingest.url, salt=WEB_SALT)

    @functools.cached_property
    def web_client(self) -> TelemetryDeck:
        return TelemetryDeck(app_id=APP_ID, salt=WEB_SALT, endpoint=self.ingest.url)

    def from_view(
        self,
        path: str,
        user: str | None = None,
        headers: dict[str, str] | None = None,
        **config: Any,
    ) -> AsyncResult:
        """A visitor's POST to a view that sends a task; the web side's signals are delivered."""
        site = flask_site(self.app, self.web_client, **config).test_client()
        headers = {**(headers or {}), **({"X-User": user} if user else {})}
        answer = site.post(path, headers=headers)
        assert self.web_client.flush(5)
        return self.app.AsyncResult(answer.json["task"])  # type: ignore[index]

    def close(self) -> None:
        if "app" in self.__dict__:
            td_web.celery.teardown(self.app)
        if "web_client" in self.__dict__:
            self.web_client.close(5)


@pytest.fixture(name="celery")
def celery_side(
    broker: str, ingest: IngestServer, start_worker: StartWorker
) -> Iterator[CelerySide]:
    side = CelerySide(broker, ingest, start_worker)
    yield side
    side.close()


def flask_site(celery_app: Celery, client: TelemetryDeck, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TELEMETRYDECK_CLIENT=client,
        TELEMETRYDECK_HANDLE_SIGTERM=False,
        TELEMETRYDECK_RESPECT_GPC=True,
        **config,
    )
    td = FlaskTelemetryDeck(app)

    @td.user_loader
    def user() -> str | None:
        return request.headers.get("X-User")

    @app.post("/report")
    def report() -> dict[str, str]:
        result = celery_app.tasks["tests.visit"].delay(3)
        return {"task": result.id}

    @app.post("/start/<name>")
    def start(name: str) -> dict[str, str]:
        result = celery_app.tasks[f"tests.{name}"].delay()
        return {"task": result.id}

    @app.post("/publishing-error")
    def publishing_error() -> dict[str, str]:
        broker_down = celery_app.conf.broker_url != request.args["broker"]
        task = celery_app.tasks["tests.visit"]
        try:
            if broker_down:
                task.delay(1)
            else:
                task.delay(object())  # not JSON-serialisable
        except Exception as exc:
            return {"error": type(exc).__name__}
        return {"error": ""}

    return app


def of_type(signals: list[dict[str, Any]], signal_type: str) -> list[dict[str, Any]]:
    return [s for s in signals if s["type"] == signal_type]


def wait_for_type(ingest: IngestServer, signal_type: str, count: int = 1) -> list[dict[str, Any]]:
    return ingest.wait_for_type(signal_type, count, timeout=30)


def test_a_task_started_from_a_view_counts_for_the_visitors_session(
    ingest: IngestServer, celery: CelerySide
) -> None:
    worker = celery.start_worker()
    celery.from_view("/report", user="user-7").get(timeout=30)
    request_signal = ingest.wait_for_signals(1) and of_type(ingest.accepted_signals, "HTTP.request")
    assert len(request_signal) == 1
    session_id = request_signal[0]["sessionID"]
    user_hash = hash_client_user("user-7", WEB_SALT)
    assert request_signal[0]["clientUser"] == user_hash

    [custom] = wait_for_type(ingest, "Report.built")
    assert custom["sessionID"] == session_id
    assert custom["clientUser"] == user_hash
    assert custom["payload"]["Report.rows"] == "3"
    [run] = wait_for_type(ingest, "Celery.task")
    assert (run["sessionID"], run["clientUser"]) == (session_id, user_hash)
    payload = run["payload"]
    assert payload["Celery.task.name"] == "tests.visit"
    assert payload["Celery.task.outcome"] == "succeeded"
    assert payload["Celery.task.queue"] == "celery"
    assert payload["Celery.task.retries"] == "0"
    assert float(payload["TelemetryDeck.Signal.durationInSeconds"]) >= 0
    assert payload["floatValue"] >= 0
    # Only the derived values travelled: the worker has another salt and never saw the id.
    assert hash_client_user("user-7", WORKER_SALT) not in json.dumps(ingest.accepted_signals)
    assert worker.stop() == 0


def test_an_anonymous_visitors_task_shares_the_anonymous_user_of_the_session(
    ingest: IngestServer, celery: CelerySide
) -> None:
    celery.start_worker()
    seen = celery.from_view("/start/session").get(timeout=30)
    [request_signal] = of_type(ingest.wait_for_signals(1), "HTTP.request")
    assert seen == {"session": request_signal["sessionID"], "user": request_signal["clientUser"]}


def test_a_task_started_by_a_request_td_web_sends_nothing_for_sends_nothing(
    ingest: IngestServer, celery: CelerySide
) -> None:
    worker = celery.start_worker()
    opted_out = {"Sec-GPC": "1"}
    started = celery.from_view("/report", "user-7", opted_out)
    assert started.get(timeout=30) == 3  # the task itself runs as ever
    assert worker.stop() == 0  # everything the worker held is delivered by now
    assert ingest.accepted_signals == []


def test_a_task_of_a_sampled_session_carries_the_sample_rate(
    ingest: IngestServer, celery: CelerySide
) -> None:
    """Counts divided by Sampling.rate estimate the unsampled counts: the task's signals
    must carry the rate their session was kept at, like the request's."""
    worker = celery.start_worker()
    rate = 0.999999999  # every session is kept, and carries the rate
    started = celery.from_view("/report", "user-7", TELEMETRYDECK_SAMPLE_RATE=rate)
    assert started.get(timeout=30) == 3
    [request_signal] = of_type(ingest.wait_for_signals(1), "HTTP.request")
    assert request_signal["payload"]["Sampling.rate"] == repr(rate)
    [custom] = wait_for_type(ingest, "Report.built")
    [run] = wait_for_type(ingest, "Celery.task")
    for signal in (custom, run):
        assert signal["sessionID"] == request_signal["sessionID"]
        assert signal["payload"].get("Sampling.rate") == repr(rate), signal["type"]
    assert worker.stop() == 0


def test_outcomes_failed_and_retried_without_arguments_or_messages(
    ingest: IngestServer, celery: CelerySide
) -> None:
    celery.start_worker()
    failing = celery.app.tasks["tests.fail"].delay(CANARY)
    with pytest.raises(ValueError, match=CANARY):
        failing.get(timeout=30)
    assert celery.app.tasks["tests.retry"].delay().get(timeout=30) == "second time lucky"

    runs = wait_for_type(ingest, "Celery.task", 3)
    outcomes = sorted(
        (
            s["payload"]["Celery.task.name"],
            s["payload"]["Celery.task.outcome"],
            s["payload"]["Celery.task.retries"],
            s["payload"].get("TelemetryDeck.Error.id"),
        )
        for s in runs
    )
    assert outcomes == [
        ("tests.fail", "failed", "0", "ValueError"),
        ("tests.retry", "retried", "0", None),
        ("tests.retry", "succeeded", "1", None),
    ]
    # Outside a request, a task runs in the worker's own session, with its anonymous user.
    assert all(s["sessionID"] and len(s["clientUser"]) == 64 for s in runs)
    assert CANARY not in json.dumps(ingest.accepted_signals)


def test_child_exits_and_warm_shutdown_deliver_every_signal_once(
    ingest: IngestServer, celery: CelerySide
) -> None:
    # A minute between sends: only the deliveries at process exits can bring these in.
    worker = celery.start_worker(max_tasks_per_child="3", TD_CELERY_FLUSH_INTERVAL="60")
    numbered = celery.app.tasks["tests.numbered"]
    results = [numbered.delay(n) for n in range(10)]
    assert sorted(r.get(timeout=60) for r in results) == list(range(10))
    assert worker.stop() == 0

    numbers = Counter(
        s["payload"]["Test.number"] for s in of_type(ingest.accepted_signals, "Test.numbered")
    )
    assert numbers == Counter(str(n) for n in range(10))  # all, none twice
    runs = of_type(ingest.accepted_signals, "Celery.task")
    assert len(runs) == 10


def test_a_task_that_kills_its_worker_is_reported_by_the_main_process(
    ingest: IngestServer, celery: CelerySide
) -> None:
    from billiard.exceptions import WorkerLostError

    celery.start_worker()
    dying = celery.from_view("/start/die", user="user-9")
    with pytest.raises(WorkerLostError):
        dying.get(timeout=60)
    [run] = wait_for_type(ingest, "Celery.task")
    assert run["clientUser"] == hash_client_user("user-9", WEB_SALT)
    assert run["payload"]["Celery.task.outcome"] == "failed"
    assert run["payload"]["TelemetryDeck.Error.id"] == "billiard.exceptions.WorkerLostError"
    assert "TelemetryDeck.Signal.durationInSeconds" not in run["payload"]
    # The pool replaced the child: the next task runs and is delivered.
    assert celery.app.tasks["tests.numbered"].delay(1).get(timeout=60) == 1
    assert wait_for_type(ingest, "Test.numbered")


def test_a_worker_without_td_web_runs_tasks_that_carry_the_header(
    ingest: IngestServer, celery: CelerySide
) -> None:
    celery.start_worker(TD_CELERY_WITH_TD_WEB="0")
    assert celery.from_view("/report", user="user-7").get(timeout=30) == 3
    sent = {s["type"] for s in ingest.accepted_signals}
    assert "HTTP.request" in sent
    assert not sent & {"Report.built", "Celery.task"}  # nothing from the plain worker


def test_a_malformed_header_is_ignored_with_a_warning(
    ingest: IngestServer, celery: CelerySide
) -> None:
    worker = celery.start_worker()
    task = celery.app.tasks["tests.session"]
    forged = task.apply_async(headers={"td_web": {"sessionID": "x" * 300, "clientUser": "raw"}})
    seen = forged.get(timeout=30)
    assert len(seen["session"]) == 32  # the worker's own process session
    assert len(seen["user"]) == 64
    assert "['sessionID'] is not 1-256 printable ASCII" in worker.output()
    assert "['clientUser'] is not a 64-character lowercase hex hash" in worker.output()


def test_a_task_sent_without_td_web_on_the_web_side_uses_the_workers_session(
    ingest: IngestServer, celery: CelerySide
) -> None:
    celery.start_worker()
    plain = make_app(celery.broker, None, with_td_web=False)
    assert plain.tasks["tests.visit"].delay(5).get(timeout=30) == 5
    [custom] = wait_for_type(ingest, "Report.built")
    [run] = wait_for_type(ingest, "Celery.task")
    assert custom["sessionID"] == run["sessionID"]


@pytest.mark.parametrize("with_td_web", [False, True], ids=["without td_web", "with td_web"])
def test_publishing_errors_are_exactly_those_without_td_web(
    ingest: IngestServer, celery: CelerySide, with_td_web: bool
) -> None:
    working = make_app(celery.broker, ingest.url, with_td_web=with_td_web)
    down = make_app(
        f"redis://127.0.0.1:{free_port()}/0",
        ingest.url,
        with_td_web=with_td_web,
        backend="cache+memory://",
    )
    try:
        for app, expected in ((working, "EncodeError"), (down, "OperationalError")):
            site = flask_site(app, celery.web_client).test_client()
            answer = site.post("/publishing-error", query_string={"broker": celery.broker})
            assert answer.json == {"error": expected}
    finally:
        td_web.celery.teardown(working)
        td_web.celery.teardown(down)
