"""A Flask app for ``gunicorn --preload``: td_web's client is built (and used) in the master,
before the workers are forked from it."""

from __future__ import annotations

import os

from flask import Flask, request

from td_web.flask import TelemetryDeck

app = Flask(__name__)
td = TelemetryDeck(app, flush_interval=3600)  # only shutdown flushes deliver
# The master sends one signal before forking: its sender thread is alive and holds it.
with app.app_context():
    td.client.signal("Master.started", {"pid": os.getpid()})


@app.get("/pid")
def pid() -> str:
    request.telemetry.signal("Worker.served", {"worker": os.getpid()})  # type: ignore[attr-defined]
    return str(os.getpid())
