"""The diff model: paths, statuses, line numbers and the commentable anchors GitHub accepts."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthgate.core.diff import (
    Anchor,
    FileStatus,
    LineKind,
    Side,
    parse_diff,
    parse_github_files,
)
from depthgate.core.errors import DiffError

DIFFS = Path(__file__).parent / "data" / "diffs"


def load(case: str) -> bytes:
    return (DIFFS / f"{case}.diff").read_bytes()


def test_quoted_octal_and_tab_paths_are_decoded() -> None:
    assert parse_diff(load("quoted_octal_path")).files[0].path == "docs/naïve résumé.md"
    assert parse_diff(load("tab_in_path")).files[0].path == "odd\tname.txt"
    assert parse_diff(load("spaces_in_path")).files[0].path == "my dir/some file.txt"


def test_nfc_and_nfd_names_stay_distinct() -> None:
    paths = [f.path for f in parse_diff(load("nfc_vs_nfd")).files]
    assert len(set(paths)) == 2
    assert {len(p) for p in paths} == {len("café.txt"), len("café.txt") + 1}


def test_rename_copy_mode_and_kinds() -> None:
    renamed = parse_diff(load("renamed_with_edits")).files[0]
    assert (renamed.status, renamed.old_path, renamed.path) == (
        FileStatus.RENAMED,
        "src/a.py",
        "lib/b.py",
    )
    assert renamed.similarity is not None
    assert renamed.similarity < 100
    pure = parse_diff(load("renamed_pure")).files[0]
    assert pure.status is FileStatus.RENAMED
    assert pure.hunks == ()
    copied = parse_diff(load("copied")).files[0]
    assert (copied.status, copied.old_path) == (FileStatus.COPIED, "src/a.py")
    mode = parse_diff(load("mode_only")).files[0]
    assert mode.mode_changed
    assert (mode.old_mode, mode.new_mode) == ("100644", "100755")
    sub = parse_diff(load("submodule_bump")).files[0]
    assert sub.kind.value == "submodule"
    links = parse_diff(load("symlink_changed")).files
    assert {f.kind.value for f in links} == {"symlink"}


def test_crlf_content_keeps_numbers_and_strips_terminators() -> None:
    f = parse_diff(load("crlf_content")).files[0]
    assert f.line_endings == "crlf"
    assert all("\r" not in line.text for h in f.hunks for line in h.lines)
    assert parse_diff(load("mixed_line_endings")).files[0].line_endings == "mixed"


def test_a_diff_saved_with_crlf_endings_reads_like_the_original() -> None:
    crlf = parse_diff(load("crafted_crlf_whole_diff"))
    plain = parse_diff(load("modified_multi_hunk"))
    assert crlf.files == plain.files
    assert crlf.warnings


def test_missing_newline_markers_are_recorded_per_side() -> None:
    old = parse_diff(load("no_newline_old")).files[0].hunks[0]
    new = parse_diff(load("no_newline_new")).files[0].hunks[0]
    both = parse_diff(load("no_newline_both")).files[0].hunks[0]
    assert (old.old_missing_newline, old.new_missing_newline) == (True, False)
    assert (new.old_missing_newline, new.new_missing_newline) == (False, True)
    assert (both.old_missing_newline, both.new_missing_newline) == (True, True)


def test_anchors_are_right_for_added_and_context_left_for_deleted() -> None:
    diff = parse_diff(load("modified_multi_hunk"))
    for hunk in diff.hunks:
        for line in hunk.lines:
            if line.kind is LineKind.DELETED:
                assert line.old_no is not None
                assert diff.anchors[Anchor(hunk.path, Side.LEFT, line.old_no)] is hunk
            else:
                assert line.new_no is not None
                assert diff.anchors[Anchor(hunk.path, Side.RIGHT, line.new_no)] is hunk
            if line.kind is LineKind.CONTEXT:
                # context lines are commented on by their new number only (old numbers are
                # unique within a file, so no deleted line can own this LEFT anchor)
                assert line.old_no is not None
                assert Anchor(hunk.path, Side.LEFT, line.old_no) not in diff.anchors
    assert Anchor("app.py", Side.RIGHT, 1) not in diff.anchors  # outside every hunk


def test_malformed_files_do_not_sink_the_others() -> None:
    good = load("added_file")
    bad = load("crafted_malformed_hunk_header")
    diff = parse_diff(bad + good)
    assert [f.problem is None for f in diff.files] == [False, True]
    assert diff.files[0].problem
    assert "hunk header" in diff.files[0].problem
    assert diff.files[1].hunks


@pytest.mark.parametrize(
    "text",
    ["", "\n\n"],
)
def test_empty_input_is_an_empty_diff(text: str) -> None:
    assert parse_diff(text).files == ()


def test_text_that_is_not_a_diff_is_an_error() -> None:
    with pytest.raises(DiffError, match="not a unified diff"):
        parse_diff("hello world\n")
    with pytest.raises(DiffError, match="files API"):
        parse_diff("@@ -1 +1 @@\n-a\n+b\n")


def test_ten_thousand_hunks() -> None:
    parts = ["diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n"]
    for i in range(10_000):
        start = 1 + i * 10
        parts.append(f"@@ -{start},1 +{start},1 @@\n-old {i}\n+new {i}\n")
    diff = parse_diff("".join(parts))
    assert len(diff.files[0].hunks) == 10_000
    assert len(diff.anchors) == 20_000


def test_github_files_api_patches() -> None:
    files = [
        {
            "filename": "src/app.py",
            "status": "modified",
            "changes": 2,
            "patch": "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c",
        },
        {"filename": "img.png", "status": "modified", "changes": 0},
        {"filename": "huge.sql", "status": "added", "changes": 90000},
        {
            "filename": "new/name.py",
            "previous_filename": "old/name.py",
            "status": "renamed",
            "changes": 0,
        },
    ]
    diff = parse_github_files(files)
    app, img, huge, renamed = diff.files
    assert [a for a in diff.anchors if a.path == "src/app.py"] == [
        Anchor("src/app.py", Side.RIGHT, 1),
        Anchor("src/app.py", Side.LEFT, 2),
        Anchor("src/app.py", Side.RIGHT, 2),
        Anchor("src/app.py", Side.RIGHT, 3),
    ]
    assert app.hunks[0].path == "src/app.py"
    assert img.binary
    assert img.problem is None
    assert huge.problem == "patch_omitted"
    assert huge.status is FileStatus.ADDED
    assert (renamed.status, renamed.old_path, renamed.hunks) == (
        FileStatus.RENAMED,
        "old/name.py",
        (),
    )


# ---------------------------------------------------------------------------------------------
# Property: for any pair of files, every anchor parsed from real `git diff` names the line with
# that text on its side.

_LINE = st.text(alphabet=st.sampled_from("ab \t{}é\u202e"), max_size=6)


def _git_diff(old: list[str], new: list[str]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a.txt"), Path(tmp, "b.txt")
        a.write_text("".join(line + "\n" for line in old), encoding="utf-8")
        b.write_text("".join(line + "\n" for line in new), encoding="utf-8")
        res = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", "-U2", "a.txt", "b.txt"],
            cwd=tmp,
            capture_output=True,
            check=False,
        )
        assert res.returncode in (0, 1), res.stderr
        return res.stdout


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=st.lists(_LINE, max_size=30), new=st.lists(_LINE, max_size=30))
def test_anchors_match_real_git_diffs(old: list[str], new: list[str]) -> None:
    data = _git_diff(old, new)
    diff = parse_diff(data)
    if old == new:
        assert diff.files == ()
        return
    (f,) = diff.files
    seen_right, seen_left = set(), set()
    for hunk in f.hunks:
        for line in hunk.lines:
            if line.kind is LineKind.DELETED:
                assert line.old_no is not None
                assert old[line.old_no - 1] == line.text
                seen_left.add(line.old_no)
            else:
                assert line.new_no is not None
                assert new[line.new_no - 1] == line.text
                seen_right.add(line.new_no)
    assert {a.line for a in diff.anchors if a.side is Side.RIGHT} == seen_right
    assert {a.line for a in diff.anchors if a.side is Side.LEFT} == seen_left
    # every line the change touches is commentable
    assert len(new) - len(old) == sum(h.added - h.deleted for h in f.hunks)


def test_line_text_finds_the_line_an_anchor_points_at() -> None:
    diff = parse_diff("--- a/f.py\n+++ b/f.py\n@@ -1,3 +1,3 @@\n keep\n-old\n+new\n tail\n")
    (hunk,) = diff.files[0].hunks
    assert hunk.line_text(Side.RIGHT, 1) == "keep"
    assert hunk.line_text(Side.RIGHT, 2) == "new"
    assert hunk.line_text(Side.LEFT, 2) == "old"
    assert hunk.line_text(Side.LEFT, 1) is None  # context lines are RIGHT anchors only
    assert hunk.line_text(Side.RIGHT, 9) is None
