"""The folders are the layers, and this test keeps them so (design §8, style habit 13).

* ``depthgate.core`` is pure: it imports no adapter (``gateway``, ``github``), no App, no surface
  (``cli``), no HTTP or GitHub library, and reads no environment, file, process or clock. Package
  data (``importlib.resources``: prompts, packaged defaults) is part of the program, not input.
* adapters (``gateway``, ``github``) import the core, not each other and not a surface.
* only entry points (``cli``, ``app``) read the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "depthgate"

ADAPTERS = ("depthgate.gateway", "depthgate.github")
SURFACES = ("depthgate.cli", "depthgate.app", "depthgate.configfile")
IO_LIBRARIES = (
    "httpx", "httpcore", "github", "requests", "stamina", "starlette", "uvicorn", "huey", "redis",
    "prometheus_client", "os", "subprocess", "socket", "shutil", "tempfile", "time", "sqlite3",
    "urllib.request", "pathlib", "logging", "sys", "threading",
)  # fmt: skip
# calls that read the world: the environment, files, the clock
IO_CALLS = {
    "open", "getenv", "environ", "read_text", "read_bytes", "write_text", "write_bytes",
    "now", "utcnow", "today", "time", "monotonic", "perf_counter", "is_file", "exists",
}  # fmt: skip


def _modules(folder: str) -> list[Path]:
    return sorted((PKG / folder).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _io_calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            # resources.files("depthgate").joinpath(...).read_text(): package data, allowed
            if name in IO_CALLS and "resources.files" not in ast.unparse(fn):
                hits.append((node.lineno, ast.unparse(fn)))
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            hits.append((node.lineno, ast.unparse(node)))
    return hits


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_core_imports_no_adapter_surface_or_io_library(path: Path) -> None:
    bad = [
        f"{path.name}:{line}: {name}"
        for line, name in _imports(path)
        if _within(name, ADAPTERS + SURFACES + IO_LIBRARIES)
    ]
    assert not bad, "the core must stay pure: " + "; ".join(bad)


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_core_reads_no_environment_file_or_clock(path: Path) -> None:
    bad = [f"{path.name}:{line}: {call}" for line, call in _io_calls(path)]
    assert not bad, "the core reads nothing from the world: " + "; ".join(bad)


@pytest.mark.parametrize(
    ("folder", "others"),
    [("gateway", ("depthgate.github",)), ("github", ("depthgate.gateway",))],
)
def test_adapters_import_the_core_not_each_other_or_a_surface(
    folder: str, others: tuple[str, ...]
) -> None:
    bad = [
        f"{p.name}:{line}: {name}"
        for p in _modules(folder)
        for line, name in _imports(p)
        if _within(name, others + SURFACES)
    ]
    assert not bad, "; ".join(bad)


def test_only_entry_points_read_the_environment() -> None:
    readers = sorted(
        f"{p.relative_to(PKG)}:{line}"
        for folder in ("core", "gateway", "github")
        for p in _modules(folder)
        for line, call in _io_calls(p)
        if "environ" in call or "getenv" in call
    )
    assert not readers, f"read the environment at the entry point instead: {readers}"


# The entry points of the surfaces: the console script and the App's commands. Everything else
# in a surface receives typed settings (the App's handlers: Context.settings, read at startup).
ENTRY_POINTS = ("cli/main.py", "app/cli.py")


def test_surfaces_read_the_environment_only_at_their_entry_points() -> None:
    readers = sorted(
        f"{p.relative_to(PKG)}:{line}"
        for folder in ("cli", "app")
        for p in _modules(folder)
        if str(p.relative_to(PKG)) not in ENTRY_POINTS
        for line, call in _io_calls(p)
        if "environ" in call or "getenv" in call
    )
    assert not readers, f"take the value from the entry point's settings instead: {readers}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The walkers see what they must: an import of an adapter and a read of the environment."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom depthgate.gateway.client import HttpGateway\nx = os.environ\n")
    assert {n for _, n in _imports(bad)} >= {"os", "depthgate.gateway.client"}
    assert [c for _, c in _io_calls(bad)] == ["os.environ"]
