"""The Django example site (example_projects/django_site): a view starts a Celery task whose
signals arrive with the visitor's session, with a real worker and in Celery's eager mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from ingest_server import IngestServer
from test_celery.celery_support import EXAMPLE_SITE, Worker

pytestmark = pytest.mark.slow

#: A visitor: the home page (td_web's session cookie), then the view that starts the task.
VISIT = """
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from td_web.django.runtime import get_web_telemetry

call_command("migrate", verbosity=0)
visitor = Client()
assert visitor.get("/").status_code == 200
assert visitor.post("/invoice/", {"items": "3"}).status_code == 202
assert get_web_telemetry().client.flush(20)
"""


def site_env(ingest: IngestServer, tmp_path: Path, broker: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tdsite.settings",
        "DJANGO_SITE_DB": str(tmp_path / "site.sqlite3"),
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "TELEMETRYDECK_ENDPOINT": ingest.url,
        "TELEMETRYDECK_FLUSH_INTERVAL": "0.2",
    }
    env.pop("CELERY_BROKER_URL", None)
    if broker:
        env["CELERY_BROKER_URL"] = broker
    return env


@pytest.mark.parametrize("mode", ["worker", "eager"])
def test_a_task_started_from_the_example_sites_view_keeps_the_visitors_session(
    redis_url: str,
    ingest: IngestServer,
    tmp_path: Path,
    start_example_worker: Callable[..., Worker],
    mode: str,
) -> None:
    broker = None
    worker = None
    if mode == "worker":
        broker = redis_url
        with redis.Redis.from_url(broker) as connection:
            connection.flushall()
        worker = start_example_worker(site_env(ingest, tmp_path, broker))
    env = site_env(ingest, tmp_path, broker)
    subprocess.run(
        [sys.executable, "-c", VISIT], cwd=EXAMPLE_SITE, env=env, check=True, timeout=120
    )

    [invoice] = ingest.wait_for_type("Invoice.built", timeout=60)
    [run] = ingest.wait_for_type("Celery.task", timeout=60)
    requests = [s for s in ingest.accepted_signals if s["payload"].get("path") == "/invoice/"]
    assert len(requests) == 1
    visitor = (requests[0]["sessionID"], requests[0]["clientUser"])
    assert (invoice["sessionID"], invoice["clientUser"]) == visitor
    assert (run["sessionID"], run["clientUser"]) == visitor
    assert run["payload"]["Celery.task.name"] == "tdsite.build_invoice"
    assert invoice["payload"]["Invoice.items"] == "3"
    if worker is not None:
        assert worker.stop() == 0
