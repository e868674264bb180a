"""The Celery app the tests' worker runs (``celery -A celery_project worker``) and the test
process sends to. The worker reads its configuration from TD_CELERY_* environment variables."""

from __future__ import annotations

import os
import signal
from typing import Any

from celery import Celery

import td_web
import td_web.celery

WORKER_SALT = "worker-salt"


def make_app(
    broker: str,
    ingest: str | None,
    *,
    with_td_web: bool = True,
    salt: str = WORKER_SALT,
    flush_interval: float = 0.2,
    backend: str | None = None,
) -> Celery:
    app = Celery("td_web_tests", broker=broker, backend=backend or broker)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_publish_retry=False,
        broker_connection_timeout=1.0,
        result_expires=600,
    )
    if with_td_web:
        td_web.celery.setup(
            app,
            app_id="B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE",
            salt=salt,
            endpoint=ingest,
            flush_interval=flush_interval,
            max_backoff=0.5,
            initial_backoff=0.1,
        )

    @app.task(name="tests.visit", shared=False)
    def visit(rows: int) -> int:
        td_web.current().signal("Report.built", {"Report.rows": rows})
        return rows

    @app.task(name="tests.numbered", shared=False)
    def numbered(number: int) -> int:
        td_web.current().signal("Test.numbered", {"Test.number": number})
        return number

    @app.task(name="tests.fail", shared=False)
    def fail(secret: str) -> None:
        raise ValueError(secret)

    @app.task(name="tests.retry", shared=False, bind=True, max_retries=1)
    def retry(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return "second time lucky"

    @app.task(name="tests.die", shared=False)
    def die() -> None:
        td_web.current().signal("Test.beforeDeath")
        os.kill(os.getpid(), signal.SIGKILL)

    @app.task(name="tests.session", shared=False)
    def session() -> dict[str, str]:
        helper = td_web.current()
        return {"session": str(helper.session_id), "user": str(helper.client_user_hash)}

    return app


if os.environ.get("TD_CELERY_BROKER"):
    app = make_app(
        os.environ["TD_CELERY_BROKER"],
        os.environ.get("TD_CELERY_INGEST"),
        with_td_web=os.environ.get("TD_CELERY_WITH_TD_WEB", "1") == "1",
        flush_interval=float(os.environ.get("TD_CELERY_FLUSH_INTERVAL", "0.2")),
    )
