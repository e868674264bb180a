"""The documentation site: built strictly by MkDocs (a broken link or reference fails), served
over HTTP, and rendered by a real headless Chromium: a page has its navigation, its code
blocks, and the theme's script ran (it adds the copy buttons)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from browser import ARTIFACTS, png_size_and_colours, run_chromium

pytestmark = [
    pytest.mark.slow,
    # The docs toolchain installs on Python 3.11+ only (pyproject's docs extra says why);
    # CI builds and tests the site with its newest Python.
    pytest.mark.skipif(sys.version_info < (3, 11), reason="the docs site is built with 3.11+"),
]

ROOT = Path(__file__).resolve().parents[2]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    built = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(built)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    handler = functools.partial(QuietHandler, directory=str(built))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_renders_with_navigation_and_code_blocks(site: str, tmp_path: Path) -> None:
    result = run_chromium(f"{site}/quickstart/django/", tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout.decode("utf-8", "replace")
    # The navigation lists every section of the site.
    assert '<nav class="md-nav md-nav--primary"' in dom
    titles = {
        re.sub(r"\s+", " ", title).strip()
        for title in re.findall(r'<span class="md-ellipsis">(.*?)</span>', dom, re.S)
    }
    for title in (
        "Quick start",
        "Options",
        "Users in control",
        "Deployment",
        "Troubleshooting",
        "API reference",
    ):
        assert title in titles, titles
    # The code block included from the README, highlighted, with the copy button the theme's
    # script adds: the page was rendered, not merely served.
    assert re.search(r'<div class="highlight"><pre id="__code_\d+">', dom)
    assert "TelemetryDeckMiddleware" in re.sub(r"<[^>]+>", "", dom)
    assert 'title="Copy to clipboard"' in dom


def test_the_options_page_is_generated_from_the_code(site: str, tmp_path: Path) -> None:
    from td_web._config import OPTION_NAMES
    from td_web._web.settings import WEB_OPTION_NAMES

    result = run_chromium(f"{site}/options/", tmp_path / "profile", "--dump-dom")
    dom = result.stdout.decode("utf-8", "replace")
    for name in OPTION_NAMES | WEB_OPTION_NAMES:
        assert f"<code>{name}</code>" in dom, name
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "docs-options.png"
    shot.unlink(missing_ok=True)
    run_chromium(f"{site}/options/", tmp_path / "profile2", f"--screenshot={shot}")
    width, height, colours = png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1280, 900)
    assert colours > 10  # a drawn page, not a blank one
