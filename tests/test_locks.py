"""The hash-locked installs (requirements/*.txt, made by `make lock`) are complete and portable.

Each environment the project installs -- the dev/test venv, the composite action, the Docker image
and the interop tests' LiteLLM proxy -- installs with ``--require-hashes --no-deps`` from one lock.
``--no-deps`` means a dependency missing from a lock is only found when something imports it, on
some Python, on some platform. So the closure is walked here: from each lock's roots, through the
installed packages' own metadata, under every Python and platform the project supports, every
requirement whose marker can be true must be pinned in the lock, at a version its specifier admits.
(This is how ``redis``'s ``async-timeout; python_full_version < "3.11.3"`` went missing once.)
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# The Pythons requires-python admits that matter for markers (3.11.2 is Debian bookworm's), and the
# platforms the action and the image can run on.
PYTHONS = ["3.11.0", "3.11.2", "3.11.9", "3.12.8", "3.13.1", "3.14.0"]
PLATFORMS = [("linux", "Linux", "posix"), ("darwin", "Darwin", "posix"), ("win32", "Windows", "nt")]


def _env(python: str, platform: tuple[str, str, str]) -> dict[str, str]:
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(
        python_full_version=python,
        python_version=".".join(python.split(".")[:2]),
        implementation_version=python,
        implementation_name="cpython",
        platform_python_implementation="CPython",
        sys_platform=platform[0],
        platform_system=platform[1],
        os_name=platform[2],
    )
    return env


def _entries(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes); every requirement line must be pinned and hashed."""
    text = lock.read_text(encoding="utf-8")
    entries: dict[str, tuple[str, list[str]]] = {}
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(
            r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(?:\s*;[^-]*?)?((?:\s+--hash=\S+)+)", line
        )
        assert m, f"{lock.name}: not a hash-pinned requirement: {raw[:120]!r}"
        hashes = m[3].split()
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), m[1]
        entries[canonicalize_name(m[1])] = (m[2], hashes)
    return entries


def _project_roots(*extras: str) -> list[str]:
    project = PYPROJECT["project"]
    roots = list(project["dependencies"])
    for extra in extras:
        roots += project["optional-dependencies"][extra]
    roots += _in_lines(REQ / "build.in")
    return roots


def _in_lines(path: Path) -> list[str]:
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines())
    return [ln for ln in lines if ln]


def _site_packages(venv: Path) -> list[str]:
    return [str(p) for p in venv.glob("lib/python*/site-packages")]


LOCKS: dict[str, tuple[Callable[[], list[str]], Path]] = {
    "dev.txt": (lambda: _project_roots("test", "app", "bench"), ROOT / ".venv"),
    "action.txt": (_project_roots, ROOT / ".venv"),
    "app.txt": (lambda: _project_roots("app"), ROOT / ".venv"),
    "gateway.txt": (lambda: _in_lines(REQ / "gateway.in"), ROOT / ".venv-gw"),
}


def _closure(roots: list[str], venv: Path) -> Iterator[tuple[Requirement, str]]:
    """Every (requirement, who asked) whose marker is true for some supported Python/platform."""
    path = _site_packages(venv) if venv != ROOT / ".venv" else sys.path
    dists = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=path)}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(Requirement(r), "roots", frozenset[str]()) for r in roots]
    while todo:
        req, parent, parent_extras = todo.pop()
        envs = [_env(py, plat) for py in PYTHONS for plat in PLATFORMS]
        extras = parent_extras or frozenset({""})
        live = req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for env in envs for extra in extras
        )
        if not live:
            continue
        yield req, parent
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen or name not in dists:
            continue  # not installed here (another platform's or Python's): checked as a leaf
        seen.add(key)
        for spec in dists[name].requires or []:
            todo.append((Requirement(spec), req.name, frozenset(req.extras)))


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_holds_every_dependency_any_supported_python_can_need(lock: str) -> None:
    roots, venv = LOCKS[lock]
    if not venv.exists():
        pytest.fail(f"{venv.name} is missing: `make test` creates it before pytest runs")
    entries = _entries(REQ / lock)
    missing, wrong = [], []
    for req, parent in _closure(roots(), venv):
        name = canonicalize_name(req.name)
        if name == "depthgate":
            continue
        if name not in entries:
            missing.append(f"{req} (needed by {parent})")
        elif not req.specifier.contains(entries[name][0], prereleases=True):
            wrong.append(f"{req.name}=={entries[name][0]} does not satisfy {req} ({parent})")
    assert not missing, f"{lock} lacks: {sorted(set(missing))}; run `make lock`"
    assert not wrong, f"{lock}: {sorted(set(wrong))}; run `make lock`"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_is_portable_and_says_how_it_is_made(lock: str) -> None:
    text = (REQ / lock).read_text(encoding="utf-8")
    assert "make lock" in text.split("\n", 3)[1], "the header must say how to regenerate it"
    # no machine-local index or wheel directory, no extras (constraints-compatible)
    assert not [ln for ln in text.splitlines() if ln.startswith(("--", "-i ", "-f "))]
    assert "file://" not in text
    assert not re.search(r"^[A-Za-z0-9._-]+\[", text, flags=re.MULTILINE)


def test_the_marker_walk_finds_a_dependency_only_old_pythons_need() -> None:
    """The walk itself can fail: redis asks for async-timeout on Python < 3.11.3 only."""
    found = {canonicalize_name(r.name) for r, _ in _closure(["redis>=5"], ROOT / ".venv")}
    assert "async-timeout" in found


def test_shipped_locks_test_the_versions_the_suite_ran() -> None:
    """action.txt and app.txt are constrained by dev.txt: the suite tests what they ship."""
    dev = _entries(REQ / "dev.txt")
    for lock in ("action.txt", "app.txt"):
        for name, (version, _) in _entries(REQ / lock).items():
            assert dev[name][0] == version, f"{lock}: {name}=={version}, dev.txt has {dev[name][0]}"


def test_every_install_uses_a_lock() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [ln for ln in makefile.splitlines() if "pip install" in ln]
    assert installs
    for line in installs:
        assert "--require-hashes" in line or "--no-deps --no-build-isolation -e ." in line, line
    action = (ROOT / "action.yml").read_text(encoding="utf-8")
    assert (
        '--require-hashes --no-deps \\\n          -r "$GITHUB_ACTION_PATH/requirements/action.txt"'
        in action
    )
    assert "--require-hashes -r requirements/app.txt" in (ROOT / "Dockerfile").read_text()
