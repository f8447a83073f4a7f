"""Real releases as evaluation material, shared by bench/routing_eval.py and bench/context_eval.py.

Only lists of releases are committed. The code is fetched at run time through each registry's own
client -- ``pip download --no-deps --no-binary :all:`` for PyPI sdists, ``npm pack PKG@VER`` for
npm tarballs (npm resolves the tarball from its registry; no other host is named here) -- and
cached under ``~/.cache/depthgate-routing-eval``, outside the repository. Two releases' files are
diffed the way ``git diff`` renders a PR, and their full texts are kept so an evaluation can hand
the planner the source on both sides (``Sources(mode=SourceMode.REPO, ...)``).
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "depthgate-routing-eval"
ECOSYSTEMS = ("pypi", "npm")
# Archives are third-party input: a member or an archive past these is refused, not read.
MAX_ARCHIVE_BYTES = 200 << 20
MAX_MEMBER_BYTES = 20 << 20
FETCH_TIMEOUT = 900  # seconds, for one download by the registry's client


def language(path: str) -> str:
    """The ecosystem language a path is scored under: ``python`` or ``js`` (JavaScript and
    TypeScript together), ``other`` for the rest."""
    if path.endswith((".py", ".pyi")):
        return "python"
    if path.endswith((".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")):
        return "js"
    return "other"


def _archives(where: Path) -> list[Path]:
    if not where.exists():
        return []
    return sorted(
        p for p in where.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".zip", ".bz2"))
    )


def fetch(ecosystem: str, package: str, version: str, cache: Path, *, offline: bool) -> Path:
    """The source archive of ``package`` at ``version``, downloaded once into the cache."""
    if ecosystem not in ECOSYSTEMS:
        raise ValueError(f"{package}: unknown ecosystem {ecosystem!r} (use one of {ECOSYSTEMS})")
    sub = "sdists" if ecosystem == "pypi" else "npm"
    where = cache / sub / f"{package.lower().replace('/', '__')}-{version}"
    found = _archives(where)
    if found:
        return found[0]
    if offline:
        raise FileNotFoundError(f"{package} {version} is not in the cache {where} (--offline)")
    where.mkdir(parents=True, exist_ok=True)
    if ecosystem == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        # only the package itself from source: its build requirements may come as wheels, so
        # that preparing its metadata does not compile them (Cython, ...) first
        cmd += ["--no-binary", package, f"{package}=={version}", "-d", str(where)]
    else:
        cmd = ["npm", "pack", f"{package}@{version}", "--silent", "--pack-destination", str(where)]
    run = subprocess.run(cmd, capture_output=True, timeout=FETCH_TIMEOUT, check=False)
    found = _archives(where)
    if run.returncode != 0 or not found:
        err = " / ".join(run.stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
        raise FileNotFoundError(
            f"{ecosystem} {package} {version}: the download failed ({err or 'no archive'});"
            " check that the version exists on the registry"
        )
    return found[0]


def read_archive(path: Path) -> dict[str, bytes]:
    """The archive's files by path, without the top-level directory (``name-version/`` of an
    sdist, ``package/`` of an npm tarball). Refuses archives and members past the caps."""
    if path.stat().st_size > MAX_ARCHIVE_BYTES:
        raise ValueError(f"{path}: archive over {MAX_ARCHIVE_BYTES >> 20} MB")
    out: dict[str, bytes] = {}
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir() and "/" in info.filename:
                    if info.file_size > MAX_MEMBER_BYTES:
                        continue  # generated data, never a reviewed source file
                    out[info.filename.split("/", 1)[1]] = z.read(info)
        return out
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile() and "/" in m.name and m.size <= MAX_MEMBER_BYTES:
                f = t.extractfile(m)
                if f is not None:
                    out[m.name.split("/", 1)[1]] = f.read()
    return out


def git_diff(old: bytes | None, new: bytes | None, path: str) -> str:
    """One file's change as ``git diff`` renders it in a PR (3 lines of context)."""
    with tempfile.TemporaryDirectory() as td:
        a, b = Path(td, "old"), Path(td, "new")
        args = []
        for p, data in ((a, old), (b, new)):
            if data is None:
                args.append("/dev/null")
            else:
                p.write_bytes(data)
                args.append(str(p))
        run = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", "-U3", *args],
            capture_output=True,
            check=False,
            timeout=120,
        )
    text = run.stdout.decode("utf-8", "replace")
    if not text:
        return ""
    body = text[text.index("\n@@") + 1 :] if "\n@@" in text else ""
    head = f"diff --git a/{path} b/{path}\n"
    if old is None:
        head += f"new file mode 100644\n--- /dev/null\n+++ b/{path}\n"
    elif new is None:
        head += f"deleted file mode 100644\n--- a/{path}\n+++ /dev/null\n"
    else:
        head += f"--- a/{path}\n+++ b/{path}\n"
    return head + body


# Tests are left out of the ordinary diffs, as the fix cases name only the fixed source files.
TEST_GLOBS = (
    "*/tests/*",
    "*/test/*",
    "*/__tests__/*",
    "tests/*",
    "test/*",
    "*/test_*.py",
    "*_test.py",
    "*.test.*",
    "*.spec.*",
)


def selected(path: str, globs: Sequence[str]) -> bool:
    """Whether ``path`` is one of an ordinary case's files: matched by a glob, not excluded by a
    later ``!glob``, and not a test."""
    if any(fnmatch.fnmatch(path, g) for g in TEST_GLOBS):
        return False
    keep = False
    for g in globs:
        if g.startswith("!"):
            if fnmatch.fnmatch(path, g[1:]):
                keep = False
        elif fnmatch.fnmatch(path, g):
            keep = True
    return keep


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class ReleasePair:
    """Two releases' selected files: the PR-like diff and the full text of both sides."""

    diff: str
    old: Mapping[str, str | None]  # path -> text (None: absent or not UTF-8)
    new: Mapping[str, str | None]


def release_pair(
    spec: Mapping[str, object], cache: Path, *, offline: bool, exact_files: bool
) -> ReleasePair:
    """Diff ``spec``'s files between ``before`` and ``after``. ``exact_files``: ``files`` are
    paths that must exist on a side (fix cases); otherwise globs (ordinary releases)."""
    eco = str(spec.get("ecosystem", "pypi"))
    pkg, before, after = str(spec["package"]), str(spec["before"]), str(spec["after"])
    old = read_archive(fetch(eco, pkg, before, cache, offline=offline))
    new = read_archive(fetch(eco, pkg, after, cache, offline=offline))
    files = [str(f) for f in spec["files"]]  # type: ignore[attr-defined]
    if exact_files:
        missing = [p for p in files if p not in old and p not in new]
        if missing:
            raise FileNotFoundError(f"{pkg} {before}..{after}: no file {missing} in either release")
        unchanged = [p for p in files if old.get(p) == new.get(p)]
        if unchanged:
            raise ValueError(f"{pkg} {before}..{after}: {unchanged} did not change")
        paths = files
    else:
        paths = sorted(
            p for p in set(old) | set(new) if old.get(p) != new.get(p) and selected(p, files)
        )
    diff = "".join(git_diff(old.get(p), new.get(p), p) for p in paths)
    return ReleasePair(
        diff, {p: _text(old.get(p)) for p in paths}, {p: _text(new.get(p)) for p in paths}
    )
