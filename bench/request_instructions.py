"""Instructions the request thread executes per request, counted by valgrind (deterministic).

    python bench/request_instructions.py [--frameworks starlette,flask] [--variants bare,td_web]
                                         [--requests 1000] [--baseline DIR]

The same hello-world apps and variants as ``overhead.py`` (``_apps.py``, ``_variants.py``),
each in a process of its own run under ``valgrind --tool=callgrind --separate-threads=yes``:
after a warm-up the process calls ``os.getppid()`` (``--dump-before=getppid`` starts a new
profile part there), serves ``--requests`` requests, and calls it again. The main thread's
part between the two marks is the figure: instructions per request, the sender thread's work
left out (it runs on a thread of its own and goes to its own file). Wall-clock time on a
shared 2-core machine wanders by ±30 %; these counts do not (a few hundred instructions per
request between identical runs: dict and allocator states).

``--baseline DIR`` adds the td_web variants from an earlier tree (a directory holding a
``td_web`` package), as ``overhead.py`` does. ``--profile DIR`` keeps the callgrind files, to
read with ``callgrind_annotate`` (C level: which parts of the interpreter; for Python-level
call counts use cProfile).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP = 300


def child(framework: str, variant_name: str, sink: str, requests: int) -> None:
    """Runs under valgrind: build the app, warm up, mark, serve, mark."""
    sys.path.insert(0, HERE)
    from _apps import build
    from _variants import VARIANTS

    variant = VARIANTS[variant_name]
    driver = build(framework, variant, sink)
    if variant.new_visitor:
        driver.forget_cookies()
    status, body = driver.request()
    if status != 200 or b"item 42" not in body:
        raise SystemExit(f"{framework}/{variant_name}: the app answered {status} {body[:80]!r}")
    driver.run(WARMUP)
    for thread in threading.enumerate():  # td_web's one-off User-Agent rules compilation
        if thread.name == "td_web-ua-rules":
            thread.join(300)
    os.getppid()  # mark: the part before this is start-up and warm-up
    driver.run(requests)
    os.getppid()  # mark: the part before this is the measured requests


def count(
    framework: str, variant: str, sink: str, requests: int, baseline: str | None, keep: str | None
) -> float:
    """Instructions per request of the main thread (one valgrind run)."""
    name, _, tag = variant.partition("@")
    out = tempfile.mkdtemp(prefix="td_web-callgrind-")
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tag:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--dump-before=getppid",
        f"--callgrind-out-file={out}/callgrind.out",
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        framework,
        name,
        sink,
        str(requests),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=HERE)
    if result.returncode != 0:
        raise RuntimeError(f"{framework}/{variant} failed:\n{result.stderr[-3000:]}")
    # callgrind.out.<part>-<thread>: part 2 of thread 1 is the measured requests.
    parts = glob.glob(f"{out}/callgrind.out.2-01") or glob.glob(f"{out}/callgrind.out*.2-01")
    if not parts:
        raise RuntimeError(f"no profile part 2 of thread 1 in {sorted(os.listdir(out))}")
    with open(parts[0]) as profile:
        totals = re.search(r"^(?:summary|totals): (\d+)", profile.read(), re.MULTILINE)
    assert totals is not None
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(parts[0], os.path.join(keep, f"callgrind.{framework}.{variant}"))
    shutil.rmtree(out, ignore_errors=True)
    return int(totals.group(1)) / requests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", default="starlette,fastapi,flask,django-wsgi")
    parser.add_argument("--variants", default="bare,td_web,td_web-new")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline", metavar="DIR")
    parser.add_argument("--profile", metavar="DIR", help="keep the callgrind files here")
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    import _sink

    variants = ["bare", *(v for v in args.variants.split(",") if v and v != "bare")]
    if args.baseline:
        twins = [v for v in variants if v.startswith("td_web")]
        variants[1:1] = [v + "@baseline" for v in twins]
    print(
        f"# instructions per request on the request thread (valgrind callgrind), "
        f"{time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, "
        f"{args.requests} requests after {WARMUP} warm-up\n"
    )
    frameworks = args.frameworks.split(",")
    table: dict[str, dict[str, float]] = {}
    with _sink.serve("sink") as sink:
        for framework in frameworks:
            for variant in variants:
                table.setdefault(variant, {})[framework] = count(
                    framework, variant, sink, args.requests, args.baseline, args.profile
                )
                print(f"  {framework} {variant}: {table[variant][framework]:,.0f}", flush=True)
    print("\n| variant | " + " | ".join(frameworks) + " |")
    print("|---|" + "---:|" * len(frameworks))
    for variant, row in table.items():
        cells = []
        for framework in frameworks:
            value, bare = row[framework], table["bare"][framework]
            cells.append(f"{value:,.0f}" if variant == "bare" else f"+{value - bare:,.0f}")
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
