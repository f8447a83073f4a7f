"""The golden diffs' anchors, checked inside the suite against real files (style habit 16: an
oracle we did not write). Each git-made case of scripts/regen_golden_diffs.py is built again as a
real repository in a temporary directory; its golden ``.diff`` and a fresh ``git diff`` are
parsed, and every anchor must name, by its number, the line with the parsed text in the real
file -- the "before" blob for LEFT (deleted and context lines by their old number), the staged
"after" blob for RIGHT. The golden JSON stays as the parser's regression record; this is what
makes it right."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from depthgate.core.diff import LineKind, parse_diff

GOLDEN = Path(__file__).parent / "data" / "diffs"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "regen_golden_diffs.py"


def _load_script() -> Any:
    """The regeneration script, loaded by path: scripts/ is not a package."""
    spec = importlib.util.spec_from_file_location("regen_golden_diffs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REGEN = _load_script()
CASES: dict[str, Any] = REGEN.git_cases()
GIT_ENV: dict[str, str] = REGEN.GIT_ENV

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-c", "core.quotePath=true", "-c", "core.autocrlf=false", *args],
        cwd=repo,
        env=GIT_ENV,
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout


def real_lines(repo: Path, rev: str, path: str) -> list[str]:
    """The lines of ``path`` at ``rev`` (``HEAD``: before; ``""``: the index, after) as git
    stores them; a submodule as the line git's diff shows for it."""
    listing = git(repo, "ls-tree", "HEAD", "--", path) if rev else git(repo, "ls-files", "-s", path)
    mode, sha = listing.split()[:2] if rev == "" else listing.split()[0:3:2]
    if mode == b"160000":
        return [f"Subproject commit {sha.decode()}"]
    blob = git(repo, "cat-file", "-p", f"{rev}:{path}")
    return [ln.rstrip("\r") for ln in blob.decode("utf-8", "replace").split("\n")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_anchors_name_the_real_lines(name: str, tmp_path: Path) -> None:
    before, after, extra, chmod = CASES[name]
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    REGEN.write_tree(repo, before)
    git(repo, "commit", "-q", "--allow-empty", "-m", "before")
    REGEN.write_tree(repo, after)
    if chmod:
        (repo / chmod[0]).chmod(chmod[1])
        git(repo, "add", "-A")
    fresh = git(repo, "diff", "--cached", "--no-color", "-M", "--no-ext-diff", *extra)
    golden = (GOLDEN / f"{name}.diff").read_bytes()

    for text in (golden, fresh):
        diff = parse_diff(text)
        checked = 0
        for f in diff.files:
            for hunk in f.hunks:
                for line in hunk.lines:
                    if line.kind is not LineKind.ADDED:
                        old = real_lines(repo, "HEAD", f.old_path or f.path)
                        assert line.old_no is not None
                        assert old[line.old_no - 1] == line.text, (f.path, "LEFT", line.old_no)
                        checked += 1
                    if line.kind is not LineKind.DELETED:
                        new = real_lines(repo, "", f.path)
                        assert line.new_no is not None
                        assert new[line.new_no - 1] == line.text, (f.path, "RIGHT", line.new_no)
                        checked += 1
        # every changed line git reports is one the parser anchored
        rows = text.split(b"\n")
        plus = sum(1 for ln in rows if ln.startswith(b"+") and not ln.startswith(b"+++ "))
        minus = sum(1 for ln in rows if ln.startswith(b"-") and not ln.startswith(b"--- "))
        assert sum(h.added for h in diff.hunks) == plus
        assert sum(h.deleted for h in diff.hunks) == minus
        assert checked >= plus + minus
