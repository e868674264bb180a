"""A real Redis broker (Debian's redis-server, started on a free port) and real Celery workers
(``celery worker`` subprocesses with the prefork pool) for the Celery tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from ingest_server import free_port
from test_celery.celery_support import Worker

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (./dev test installs Debian's redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir]
        process = subprocess.Popen(
            [server, "--port", str(port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        probe = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        try:
            yield url
        finally:
            probe.close()
            process.terminate()
            process.wait(10)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(broker: str, ingest: str | None, **options: str) -> Worker:
        worker = Worker.test_project(
            broker, ingest, tmp_path / f"worker{len(workers)}.log", **options
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_example_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    """``celery -A tdsite worker`` in example_projects/django_site."""
    workers: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker.example_site(env, tmp_path / f"example-worker{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
