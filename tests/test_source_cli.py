"""``depthgate plan --diff PATH --repo DIR [--base REV]`` against real git repositories: the new
side from the work tree, the old side by the diff's blob ids (or --base), content that does not
hash to the diff's blob id refused with a warning, caps, and diff-only without --repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from depthgate.cli.gitsource import repo_sources
from depthgate.cli.main import main
from depthgate.core.diff import parse_diff
from depthgate.core.source import SourceCaps, SourceMode, git_blob_id
from tests.gitrepo import GitRepo

FILLER = "".join(f"    step_{i} = clean + {i}\n" for i in range(30))
V1 = (
    "import os\nimport subprocess\n\n\ndef helper(name):\n    return name.strip()\n\n\n"
    "def run(name, cmd):\n    clean = helper(name)\n" + FILLER + "    if clean:\n"
    "        return subprocess.run(cmd, shell=False)\n    return None\n\n\n"
    "def main():\n    return run('x', ['ls'])\n"
)
V2 = V1.replace("shell=False", "shell=True")
NOTES_V1 = "# Notes\n\nSome words.\n"
NOTES_V2 = "# Notes\n\nSome more words.\n"


@pytest.fixture
def repo(tmp_path: Path) -> tuple[GitRepo, str, str, Path]:
    g = GitRepo(tmp_path / "repo")
    base = g.commit({"app/service.py": V1, "NOTES.md": NOTES_V1}, "base")
    head = g.commit({"app/service.py": V2, "NOTES.md": NOTES_V2}, "head")
    diff = tmp_path / "pr.diff"
    diff.write_text(g.diff(base, head))
    return g, base, head, diff


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["plan", *args, "--format", "json"]) == 0
    out, _ = capsys.readouterr()
    return json.loads(out)  # type: ignore[no-any-return]


def test_index_lines_carry_blob_ids_matched_by_prefix(repo: tuple[GitRepo, str, str, Path]) -> None:
    _g, _, _, diff = repo
    (f, _notes) = sorted(
        parse_diff(diff.read_text()).files, key=lambda f: f.path != "app/service.py"
    )
    assert f.old_blob is not None
    assert git_blob_id(V1.encode()).startswith(f.old_blob)
    assert f.new_blob is not None
    assert git_blob_id(V2.encode()).startswith(f.new_blob)
    assert len(f.old_blob) < 40  # git abbreviates them


def test_repo_gives_both_sides_and_the_whole_enclosing_function(
    repo: tuple[GitRepo, str, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    g, _, _, diff = repo
    doc = plan_json(capsys, "--diff", str(diff), "--repo", str(g.root))
    assert doc["sources"]["mode"] == "repo"
    assert doc["sources"]["diff_only"] == []
    task = next(t for t in doc["tasks"] if t["hunks"][0]["path"] == "app/service.py")
    assert task["tier"] == "deep"
    (hunk,) = task["hunks"]
    assert hunk["language"] == "python"
    assert hunk["enclosing"] == "function run (lines 9-43)"
    kinds = {b["kind"]: b for b in task["context_code"]}
    assert kinds["definition"]["lines"] == [9, 43]
    assert kinds["definition"]["cut"] is None
    assert kinds["imports"]["lines"] == [1, 2]
    # deep: the function it calls and the one that calls it, both in the PR's files
    assert "called: function helper in app/service.py" in kinds["callee"]["label"]
    assert "calls run: function main in app/service.py" in kinds["caller"]["label"]


def test_without_repo_the_plan_is_diff_only(
    repo: tuple[GitRepo, str, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, _, diff = repo
    doc = plan_json(capsys, "--diff", str(diff))
    assert doc["sources"] == {"mode": "diff", "files": 0, "diff_only": [], "notes": []}
    assert all(t["context_code"] == [] for t in doc["tasks"])


def test_a_tampered_work_tree_file_is_refused_with_a_warning(
    repo: tuple[GitRepo, str, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    g, base, _, diff = repo
    # the work tree moves on and its objects lose the head blob: nothing matches the diff
    (g.root / "app/service.py").write_text(V2 + "EVIL = 1\n")
    g.git("reset", "-q", "--soft", base)
    g.git("stash", "-q")
    g.git("stash", "drop", "-q")
    g.git("reflog", "expire", "--expire=now", "--all")
    g.git("gc", "-q", "--prune=now")
    (g.root / "app/service.py").write_text(V2 + "EVIL = 1\n")
    assert main(["plan", "--diff", str(diff), "--repo", str(g.root), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert "app/service.py: content does not match the diff" in err
    assert {"path": "app/service.py", "reason": "content does not match the diff"} in doc[
        "sources"
    ]["diff_only"]
    task = next(t for t in doc["tasks"] if t["hunks"][0]["path"] == "app/service.py")
    assert task["context_code"] == []  # diff-only context for that file
    assert "EVIL" not in out


def test_base_rev_gives_the_old_side_when_the_diff_names_no_blobs(tmp_path: Path) -> None:
    g = GitRepo(tmp_path / "repo")
    base = g.commit({"app/service.py": V1}, "base")
    g.commit({"app/service.py": V2}, "head")
    text = "".join(
        line
        for line in g.diff(base, "HEAD").splitlines(keepends=True)
        if not line.startswith("index ")
    )
    diff = parse_diff(text)
    assert diff.files[0].old_blob is None
    without = repo_sources(diff, str(g.root), base=None, caps=SourceCaps())
    assert without.files["app/service.py"].missing == (
        "no blob id in the diff and no --base for the old side"
    )
    with_base = repo_sources(diff, str(g.root), base=base, caps=SourceCaps())
    src = with_base.files["app/service.py"]
    assert (src.old_text, src.new_text, src.missing) == (V1, V2, None)
    assert with_base.mode is SourceMode.REPO
    # a --base whose file does not agree with the diff's old lines is not used
    other = g.commit({"app/service.py": "x = 1\n" + V2}, "later")
    wrong = repo_sources(diff, str(g.root), base=other, caps=SourceCaps())
    assert wrong.files["app/service.py"].missing == "content does not match the diff"


def test_caps_per_file_and_per_pr_fall_back_to_the_diff(
    repo: tuple[GitRepo, str, str, Path],
) -> None:
    g, _, _, path = repo
    diff = parse_diff(path.read_text())
    small = repo_sources(diff, str(g.root), base=None, caps=SourceCaps(file_bytes=512))
    assert small.files["app/service.py"].missing == "file over 512 bytes"
    assert small.files["NOTES.md"].new_text == NOTES_V2
    tight = repo_sources(diff, str(g.root), base=None, caps=SourceCaps(pr_bytes=len(V1) + 10))
    reasons = {p: f.missing for p, f in tight.files.items()}
    assert "the PR's source is over" in (reasons["app/service.py"] or reasons["NOTES.md"] or "")


def test_plan_text_names_the_source_mode_and_the_context(
    repo: tuple[GitRepo, str, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    g, _, _, diff = repo
    assert main(["plan", "--diff", str(diff), "--repo", str(g.root), "-v"]) == 0
    out, _ = capsys.readouterr()
    assert "source: repo (2 files)" in out
    assert "app/service.py: python, in function run (lines 9-43)" in out
    assert "code definition: app/service.py: enclosing function run" in out
    assert main(["plan", "--diff", str(diff)]) == 0
    assert "source: diff only" in capsys.readouterr()[0]


def test_bad_repo_and_base_are_clear_errors(
    repo: tuple[GitRepo, str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g, _, _, diff = repo
    assert main(["plan", "--diff", str(diff), "--repo", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr()[1]
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["plan", "--diff", str(diff), "--repo", str(plain)]) == 2
    assert "not a git repository" in capsys.readouterr()[1]
    assert main(["plan", "--diff", str(diff), "--repo", str(g.root), "--base", "nope"]) == 2
    assert "--base nope: not a commit" in capsys.readouterr()[1]
    assert main(["plan", "--diff", str(diff), "--base", "HEAD"]) == 2
    assert "--base REV needs --repo DIR" in capsys.readouterr()[1]
