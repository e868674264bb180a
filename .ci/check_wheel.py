"""The wheel holds only what a user needs at run time: td_web's code, its typing marker, the
collector's page and the demo's example site, and the license; nothing else (no tests, caches,
databases or development files). ``./dev package`` runs this on the wheel it built.

    python .ci/check_wheel.py dist/td_web-*.whl
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import PurePosixPath

#: Files a user needs: each must be in the wheel.
REQUIRED = (
    "td_web/__init__.py",
    "td_web/py.typed",
    "td_web/collector/static/index.html",
    "td_web/collector/static/app.js",
    "td_web/collector/static/style.css",
    "td_web/_examples/django_site/manage.py",
    "td_web/_examples/django_site/tdsite/settings.py",
    "td_web/_examples/django_site/tdsite/templates/tdsite/base.html",
)
#: Kinds of file a user may need from the package itself.
RUN_TIME_SUFFIXES = {".py", ".typed", ".html", ".js", ".css"}
FORBIDDEN_PARTS = {"tests", "__pycache__", "bench", ".ci"}


def problems(names: list[str]) -> list[str]:
    found = []
    present = set(names)
    found += [f"missing: {name}" for name in REQUIRED if name not in present]
    for name in names:
        path = PurePosixPath(name)
        top = path.parts[0]
        if top.endswith(".dist-info"):
            if path.parent.name == "licenses" and path.name != "LICENSE":
                found.append(f"unexpected license file: {name}")
            continue
        if top != "td_web":
            found.append(f"outside the td_web package: {name}")
        elif FORBIDDEN_PARTS & set(path.parts):
            found.append(f"development file: {name}")
        elif path.suffix not in RUN_TIME_SUFFIXES:
            found.append(f"not needed at run time: {name}")
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        found.append("missing: the LICENSE file in .dist-info/licenses/")
    return found


def main(wheels: list[str]) -> int:
    if not wheels:
        print("usage: check_wheel.py WHEEL...", file=sys.stderr)
        return 2
    failed = False
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
        found = problems(names)
        for problem in found:
            print(f"{wheel}: {problem}", file=sys.stderr)
        failed = failed or bool(found)
        if not found:
            print(f"{wheel}: {len(names)} files, all needed at run time")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
