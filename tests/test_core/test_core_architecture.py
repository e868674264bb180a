"""The import directions ARCHITECTURE.md states, read from the source with ``ast``: a new
import that breaks a layer fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "td_web"

#: td_web's integrations: each imports the core and its own framework, never another one.
ADAPTERS = frozenset({"django", "flask", "asgi", "celery", "serverless"})
#: Tools built on the core (the local ingest server and the demo), never imported by an adapter.
TOOLS = frozenset({"collector", "demo"})
#: Third-party web and task frameworks: only an adapter may import one.
FRAMEWORKS = frozenset({"django", "flask", "werkzeug", "starlette", "fastapi", "celery", "asgiref"})
#: The command line drives the local collector; these core modules may import the tools.
CLI_MODULES = frozenset({"td_web.cli", "td_web._commands"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), at any depth (lazy imports count)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            # ``from . import runtime`` names submodules too.
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _layer(module: str) -> str:
    """'core', an adapter's name, a tool's name, or 'other' (not td_web)."""
    parts = module.split(".")
    if parts[0] != "td_web":
        return "other"
    if len(parts) > 1 and parts[1] in ADAPTERS | TOOLS:
        return parts[1]
    return "core"


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_every_layer() -> None:
    layers = {_layer(_module_name(path)) for path in SOURCES}
    assert layers == {"core"} | ADAPTERS | TOOLS


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: _module_name(path))
def test_imports_follow_the_layers(path: Path) -> None:
    module = _module_name(path)
    layer = _layer(module)
    wrong = []
    for imported in sorted(_imports(path)):
        target = _layer(imported)
        top = imported.split(".")[0]
        if layer == "core":
            if target in ADAPTERS or top in FRAMEWORKS:
                wrong.append(f"{imported}: the core imports no adapter and no framework")
            elif target in TOOLS and module not in CLI_MODULES:
                wrong.append(f"{imported}: only the command line drives the tools")
        elif layer in ADAPTERS:
            if target != layer and target != "core" and target != "other":
                wrong.append(f"{imported}: an adapter imports the core, never another part")
        elif target in ADAPTERS:  # a tool
            wrong.append(f"{imported}: a tool is built on the core, not on an adapter")
    assert wrong == [], f"{module}: " + "; ".join(wrong)


def test_the_checker_resolves_relative_imports() -> None:
    """The checker turns relative imports into the modules they name."""
    imports = _imports(PACKAGE / "_web" / "telemetry.py")
    assert "td_web._signal" in imports  # ``from .._signal import ...``
    assert _layer("td_web.flask.state") == "flask"
    assert _layer("td_web._web.telemetry") == "core"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            found = visit(target)
            if found is not None:
                return found
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_an_adapters_modules_import_each_other_one_way(adapter: str) -> None:
    """No cycle among an adapter's modules, type-only and lazy imports included: each file can
    be read after the ones it imports."""
    modules = {
        _module_name(path): path for path in SOURCES if _layer(_module_name(path)) == adapter
    }
    package = f"td_web.{adapter}"
    graph = {
        name: {
            imported
            for imported in _imports(path)
            if imported in modules and imported != name and imported != package
        }
        for name, path in modules.items()
    }
    assert _cycle(graph) is None
