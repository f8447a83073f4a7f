"""Placement: every finding is either an anchor GitHub accepts or a reason for the summary.

Table tests in the manner of reviewdog's: one small real diff (``git diff --cached -M -U1`` of a
scratch repository), then a table of findings and what each must become. Then a property test:
random diffs times random findings, and every placed comment must be one GitHub cannot refuse --
judged by the fake GitHub's own patch parser, not by ``depthgate.core.diff``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthgate.core import placement
from depthgate.core.diff import Anchor, Side, parse_diff, parse_github_files
from depthgate.core.models import Finding
from depthgate.core.placement import Placed, PlacementMode, Reason, place, place_all
from tests.fakes.github import Row as GitHubRow
from tests.fakes.github import parse_patch

DIFFS = Path(__file__).parent / "data" / "diffs"

# src/app.py, hunk 0 (old 2-5, new 2-6): RIGHT 2 ctx, 3 add, 4 ctx, 5 add, 6 ctx; LEFT 3 del
#             hunk 1 (old 14-18, new 15-18): RIGHT 15 ctx, 16 ctx, 17 add, 18 ctx; LEFT 15, 17 del
# src/new.py  added: RIGHT 1-3 add.      docs/old.md  deleted: LEFT 1-3 del.
# docs/moved.md  pure rename (no hunks). assets/logo.png  binary (no hunks).
DIFF_TEXT = """\
diff --git a/assets/logo.png b/assets/logo.png
index d0463d4..c3d368a 100644
Binary files a/assets/logo.png and b/assets/logo.png differ
diff --git a/docs/keep.md b/docs/moved.md
similarity index 100%
rename from docs/keep.md
rename to docs/moved.md
diff --git a/docs/old.md b/docs/old.md
deleted file mode 100644
index fedc263..0000000
--- a/docs/old.md
+++ /dev/null
@@ -1,3 +0,0 @@
-gone 1
-gone 2
-gone 3
diff --git a/src/app.py b/src/app.py
index c4352f8..6f53ba2 100644
--- a/src/app.py
+++ b/src/app.py
@@ -2,4 +2,5 @@ line 1
 line 2
-line 3
+line 3 changed
 line 4
+inserted after 4
 line 5
@@ -14,5 +15,4 @@ line 13
 line 14
-line 15
 line 16
-line 17
+line 18 changed
 line 18
diff --git a/src/new.py b/src/new.py
new file mode 100644
index 0000000..a9aeef0
--- /dev/null
+++ b/src/new.py
@@ -0,0 +1,3 @@
+a = 1
+b = 2
+c = 3
"""

DIFF = parse_diff(DIFF_TEXT)
CTX, ADDED = PlacementMode.DIFF_CONTEXT, PlacementMode.ADDED
APP, NEW, OLD, L, R = "src/app.py", "src/new.py", "docs/old.md", "LEFT", "RIGHT"


def finding(
    path: str = "src/app.py",
    line: int = 3,
    side: str = "RIGHT",
    start_line: int | None = None,
    suggestion: str | None = None,
) -> Finding:
    return Finding.model_validate(
        {
            "path": path,
            "line": line,
            "side": side,
            "start_line": start_line,
            "severity": "low",
            "category": "bug",
            "title": "t",
            "body": "b",
            "suggestion": suggestion,
        }
    )


def unchecked(**fields: object) -> Finding:
    """A finding that skipped validation: placement must not rely on the schema alone."""
    base: dict[str, object] = {
        "path": "src/app.py",
        "line": 3,
        "side": "RIGHT",
        "start_line": None,
        "severity": "low",
        "category": "bug",
        "title": "t",
        "body": "b",
        "suggestion": None,
    }
    return Finding.model_construct(None, **{**base, **fields})


def at(path: str, line: int, side: str = "RIGHT", start: int | None = None) -> Placed:
    return Placed(path, line, side, start, None if start is None else side)


def test_the_fixture_parses_as_the_table_assumes() -> None:
    def lines(path: str, side: Side) -> list[int]:
        return sorted(a.line for a in DIFF.anchors if a.path == path and a.side is side)

    assert DIFF.warnings == ()
    assert lines("src/app.py", Side.RIGHT) == [2, 3, 4, 5, 6, 15, 16, 17, 18]
    assert lines("src/app.py", Side.LEFT) == [3, 15, 17]
    assert lines("src/new.py", Side.RIGHT) == [1, 2, 3]
    assert lines("docs/old.md", Side.LEFT) == [1, 2, 3]
    assert [len(f.hunks) for f in DIFF.files] == [0, 0, 1, 2, 1]


Expected = Placed | str

CASES: list[tuple[str, Finding, PlacementMode, Expected]] = [
    # --- placed, single lines
    ("added_right", finding(line=3), CTX, at(APP, 3)),
    ("added_right_added_mode", finding(line=5), ADDED, at(APP, 5)),
    ("context_right", finding(line=2), CTX, at(APP, 2)),
    ("deleted_left", finding(line=3, side=L), CTX, at(APP, 3, L)),
    ("deleted_left_added_mode", finding(line=17, side=L), ADDED, at(APP, 17, L)),
    ("added_file", finding(NEW, 2), ADDED, at(NEW, 2)),
    ("deleted_file_left", finding(OLD, 2, L), ADDED, at(OLD, 2, L)),
    ("suggestion_right", finding(line=3, suggestion="x = 1"), ADDED, at(APP, 3)),
    ("empty_suggestion_right", finding(line=17, suggestion=""), CTX, at(APP, 17)),
    # --- placed, ranges
    ("range_right", finding(line=6, start_line=2), CTX, at(APP, 6, R, 2)),
    ("range_right_added", finding(NEW, 3, start_line=1), ADDED, at(NEW, 3, start=1)),
    ("range_left", finding(line=17, side=L, start_line=15), CTX, at(APP, 17, L, 15)),
    ("range_left_deleted_file", finding(OLD, 3, L, 1), ADDED, at(OLD, 3, L, 1)),
    ("range_suggestion", finding(APP, 18, R, 15, "y"), CTX, at(APP, 18, R, 15)),
    ("start_equals_line", finding(line=4, start_line=4), CTX, at(APP, 4)),
    ("start_equals_line_left", finding(line=15, side=L, start_line=15), ADDED, at(APP, 15, L)),
    # --- invalid_path (T3: traversal and friends)
    ("dotdot_etc_passwd", finding("../../etc/passwd"), CTX, "invalid_path"),
    ("dotdot_inside", finding("src/../src/app.py"), CTX, "invalid_path"),
    ("absolute", finding("/etc/passwd"), CTX, "invalid_path"),
    ("absolute_in_diff", finding("/src/app.py"), CTX, "invalid_path"),
    ("backslash", finding("src\\app.py"), CTX, "invalid_path"),
    ("empty_segment", finding("src//app.py"), CTX, "invalid_path"),
    ("trailing_slash", finding("src/app.py/"), CTX, "invalid_path"),
    ("dot_segment", finding("./src/app.py"), CTX, "invalid_path"),
    ("nul", finding("src/app.py\x00"), CTX, "invalid_path"),
    ("newline", finding("src/\napp.py"), CTX, "invalid_path"),
    ("tab", finding("src/app\t.py"), CTX, "invalid_path"),
    ("del_char", finding("src/app.py\x7f"), CTX, "invalid_path"),
    ("c1_control", finding("src/app.py\x85"), CTX, "invalid_path"),
    ("empty_path", unchecked(path=""), CTX, "invalid_path"),
    ("path_not_a_string", unchecked(path=None), CTX, "invalid_path"),
    # --- path_not_in_diff (T3: a file not in the PR)
    ("not_in_pr", finding("README.md"), CTX, "path_not_in_diff"),
    ("case_differs", finding("src/App.py"), CTX, "path_not_in_diff"),
    ("old_name_of_rename", finding("docs/keep.md"), CTX, "path_not_in_diff"),
    ("prefix_of_path", finding("src"), CTX, "path_not_in_diff"),
    ("trailing_space", finding("src/app.py "), CTX, "path_not_in_diff"),
    ("git_prefix", finding("b/src/app.py"), CTX, "path_not_in_diff"),
    # --- file_has_no_hunks
    ("pure_rename", finding("docs/moved.md", 1), CTX, "file_has_no_hunks"),
    ("binary", finding("assets/logo.png", 1), CTX, "file_has_no_hunks"),
    # --- invalid_side (only without validation)
    ("side_lowercase", unchecked(side="right"), CTX, "invalid_side"),
    ("side_both", unchecked(side="BOTH"), CTX, "invalid_side"),
    # --- invalid_line (T3: 0, -1, "12")
    ("line_zero", finding(line=0), CTX, "invalid_line"),
    ("line_negative", finding(line=-1), CTX, "invalid_line"),
    ("line_string", unchecked(line="12"), CTX, "invalid_line"),
    ("line_bool", unchecked(line=True), CTX, "invalid_line"),
    ("line_float", unchecked(line=3.0), CTX, "invalid_line"),
    ("line_none", unchecked(line=None), CTX, "invalid_line"),
    # --- invalid_start_line
    ("start_zero", finding(line=3, start_line=0), CTX, "invalid_start_line"),
    ("start_negative", finding(line=3, start_line=-1), CTX, "invalid_start_line"),
    ("start_string", unchecked(line=3, start_line="2"), CTX, "invalid_start_line"),
    ("start_bool", unchecked(line=3, start_line=True), CTX, "invalid_start_line"),
    # --- left_on_added_file (T3)
    ("left_on_added_file", finding(NEW, 1, L), CTX, "left_on_added_file"),
    ("left_range_on_added_file", finding(NEW, 3, L, 1), CTX, "left_on_added_file"),
    # --- line_not_in_diff (T3: 99999)
    ("line_99999", finding(line=99999), CTX, "line_not_in_diff"),
    ("between_hunks", finding(line=10), CTX, "line_not_in_diff"),
    ("context_on_left", finding(line=4, side=L), CTX, "line_not_in_diff"),
    ("left_between_hunks", finding(line=10, side=L), CTX, "line_not_in_diff"),
    ("right_on_deleted_file", finding(OLD, 1), CTX, "line_not_in_diff"),
    ("past_end_of_added_file", finding(NEW, 4), CTX, "line_not_in_diff"),
    # --- start_after_line
    ("start_after_line", finding(line=3, start_line=6), CTX, "start_after_line"),
    ("start_after_line_left", finding(line=15, side=L, start_line=17), CTX, "start_after_line"),
    # --- start_not_in_diff
    ("start_before_hunk", finding(line=16, start_line=14), CTX, "start_not_in_diff"),
    ("start_between_hunks", finding(line=16, start_line=10), CTX, "start_not_in_diff"),
    ("start_on_context_left", finding(line=17, side=L, start_line=16), CTX, "start_not_in_diff"),
    # --- start_in_other_hunk (T3)
    ("start_other_hunk", finding(line=16, start_line=3), CTX, "start_in_other_hunk"),
    ("start_other_hunk_left", finding(line=15, side=L, start_line=3), CTX, "start_in_other_hunk"),
    # --- not_an_added_line (mode ADDED only)
    ("context_added_mode", finding(line=2), ADDED, "not_an_added_line"),
    ("range_over_context", finding(line=5, start_line=3), ADDED, "not_an_added_line"),
    ("range_ends_on_context", finding(line=4, start_line=3), ADDED, "not_an_added_line"),
    ("left_range_over_context", finding(APP, 17, L, 15), ADDED, "not_an_added_line"),
    # --- suggestion_on_left
    ("suggestion_on_left", finding(line=3, side=L, suggestion="x"), CTX, "suggestion_on_left"),
    ("empty_suggestion_left", finding(line=3, side=L, suggestion=""), ADDED, "suggestion_on_left"),
    ("suggestion_left_range", finding(OLD, 3, L, 1, "x"), CTX, "suggestion_on_left"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("f", "mode", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_placement_table(f: Finding, mode: PlacementMode, expected: Expected) -> None:
    assert place(f, DIFF, mode) == expected


def test_the_table_covers_every_reason_and_both_modes() -> None:
    reasons = {case[3] for case in CASES if isinstance(case[3], str)}
    assert reasons == set(Reason)
    assert {case[2] for case in CASES} == set(PlacementMode)


def test_every_reason_is_documented_in_the_module_docstring() -> None:
    assert placement.__doc__ is not None
    for reason in Reason:
        assert f"``{reason.value}``" in placement.__doc__


def test_reasons_are_plain_strings() -> None:
    result = place(finding(line=0), DIFF)
    assert isinstance(result, str)
    assert result == "invalid_line"
    assert f"{result}" == "invalid_line"


def test_added_mode_never_places_more_than_context_mode() -> None:
    for case in CASES:
        if isinstance(place(case[1], DIFF, ADDED), Placed):
            assert place(case[1], DIFF, CTX) == place(case[1], DIFF, ADDED)


def test_line_as_a_string_is_refused_by_the_schema() -> None:
    data = {
        "path": "src/app.py",
        "line": "12",
        "severity": "low",
        "category": "bug",
        "title": "t",
        "body": "b",
    }
    with pytest.raises(pydantic.ValidationError, match="line"):
        Finding.model_validate(data)
    with pytest.raises(pydantic.ValidationError, match="start_line"):
        Finding.model_validate({**data, "line": 12, "start_line": "3"})
    # and placement refuses it too, should an unvalidated finding ever reach it
    assert place(unchecked(line="12"), DIFF) == "invalid_line"


def test_the_default_mode_is_diff_context() -> None:
    assert place(finding(line=2), DIFF) == at("src/app.py", 2)


def test_place_all_splits_and_keeps_input_order() -> None:
    findings = [
        finding(line=3),
        finding("../../etc/passwd"),
        finding(line=2),
        finding("src/new.py", 1, "LEFT"),
        finding(line=17, side="LEFT", start_line=15),
        finding(line=0),
    ]
    placed, demoted = place_all(iter(findings), DIFF, ADDED)
    assert placed == [(findings[0], at("src/app.py", 3))]
    assert demoted == [
        (findings[1], "invalid_path"),
        (findings[2], "not_an_added_line"),
        (findings[3], "left_on_added_file"),
        (findings[4], "not_an_added_line"),
        (findings[5], "invalid_line"),
    ]
    placed, demoted = place_all(findings, DIFF)
    assert [f for f, _ in placed] == [findings[0], findings[2], findings[4]]
    assert [f for f, _ in demoted] == [findings[1], findings[3], findings[5]]
    assert place_all([], DIFF) == ([], [])


def test_a_path_with_a_control_character_is_refused_even_when_in_the_diff() -> None:
    diff = parse_diff((DIFFS / "tab_in_path.diff").read_bytes())
    assert diff.files[0].path == "odd\tname.txt"
    assert Anchor("odd\tname.txt", Side.RIGHT, 1) in diff.anchors
    assert place(finding("odd\tname.txt", 1), diff) == "invalid_path"


def test_a_diff_from_the_files_api_places_the_same_way() -> None:
    diff = parse_github_files(
        [
            {
                "filename": "src/app.py",
                "status": "modified",
                "patch": "@@ -1,2 +1,2 @@\n a\n-b\n+B\n@@ -9,1 +9,2 @@\n i\n+j",
            },
            {"filename": "dist/big.js", "status": "modified", "changes": 90000},
            {"filename": "img.png", "status": "added", "changes": 0},
        ]
    )
    assert place(finding(line=2), diff) == at(APP, 2)
    assert place(finding(line=2, side=L, suggestion="x"), diff) == "suggestion_on_left"
    assert place(finding(line=10, start_line=9), diff, ADDED) == "not_an_added_line"
    assert place(finding(line=10, start_line=2), diff) == "start_in_other_hunk"
    assert place(finding("dist/big.js", 1), diff) == "file_has_no_hunks"
    assert place(finding("img.png", 1, L), diff) == "file_has_no_hunks"


def test_an_empty_diff_places_nothing() -> None:
    assert place(finding(), parse_diff("")) == "path_not_in_diff"


# ---------------------------------------------------------------------------------------------
# Property: random diffs x random findings. Whatever is placed is an anchor of the diff, a range
# stays in one hunk and starts before its end, mode ADDED only places changed lines, suggestions
# only go on the RIGHT. And nothing commentable is refused.

_POOL = ("src/a.py", "lib/b.txt", "docs/c d.md", "x")
_JUNK = (
    "../../etc/passwd",
    "/etc/passwd",
    "src\\a.py",
    "src//a.py",
    "nope.py",
    "a.py",
    "src/a.py/",
)
_TEXT = st.lists(st.sampled_from(["a", "b", "c", "", "a b", "{}"]), max_size=25)


def _file_diff(
    path: str, status: str, old: list[str], new: list[str], context: int
) -> tuple[str, str | None]:
    """The file's section of a git diff, and its patch as GitHub's files API would carry it
    (from the first ``@@``; None when the file has no hunks)."""
    header = f"diff --git a/{path} b/{path}\n"
    if status == "added":
        header += "new file mode 100644\n"
    elif status == "deleted":
        header += "deleted file mode 100644\n"
    body = "".join(
        difflib.unified_diff(
            [line + "\n" for line in old],
            [line + "\n" for line in new],
            "/dev/null" if status == "added" else f"a/{path}",
            "/dev/null" if status == "deleted" else f"b/{path}",
            n=context,
        )
    )
    if not body and status == "modified":
        return "", None  # unchanged: git would not list the file
    patch = body[body.index("@@") :] if "@@" in body else None
    return header + body, patch  # an empty added/deleted file is a header alone, as git writes


_EDITS = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 60)),
    min_size=1,
    max_size=6,
)


def _edit(old: list[str], edits: list[tuple[str, int]]) -> list[str]:
    """Apply a few local edits, so that diffs have several hunks with context between them."""
    new = list(old)
    for n, (op, at_) in enumerate(edits):
        i = at_ % (len(new) + 1)
        if op == "insert" or i == len(new):
            new.insert(i, f"new {n}")
        elif op == "delete":
            del new[i]
        else:
            new[i] = f"changed {n}"
    return new


@st.composite
def _diffs(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A random git diff, and each file's patch (what GitHub's files API would list)."""
    paths = draw(st.lists(st.sampled_from(_POOL), min_size=1, max_size=3, unique=True))
    parts, patches = [], {}
    for path in paths:
        status = draw(st.sampled_from(["modified", "modified", "added", "deleted"]))
        if status == "modified":
            numbered = draw(st.sampled_from([True, True, True, False]))
            old = [f"line {i}" for i in range(40)] if numbered else draw(_TEXT)
            new = _edit(old, draw(_EDITS))
        else:
            old = [] if status == "added" else draw(_TEXT)
            new = [] if status == "deleted" else draw(_TEXT)
        section, patch = _file_diff(path, status, old, new, draw(st.integers(0, 3)))
        parts.append(section)
        if patch is not None:
            patches[path] = patch
    return "".join(parts), patches


# The oracle: the fake GitHub's own patch parser (tests/fakes/github.py), written apart from
# depthgate.core.diff, and the rules GitHub applies to a review comment: its line is a row of
# the file's patch on its side; a range starts on an earlier row of the same hunk.
Rows = dict[tuple[str, str, int], GitHubRow]


def _github_rows(patches: dict[str, str]) -> Rows:
    out: Rows = {}
    for path, text in patches.items():
        patch = parse_patch(text)
        out.update({(path, "RIGHT", n): row for n, row in patch.right.items()})
        out.update({(path, "LEFT", n): row for n, row in patch.left.items()})
    return out


def _findings(rows: Rows, paths: list[str]) -> st.SearchStrategy[Finding]:
    """Findings aimed at the diff: on one of its rows, on a range between two of its rows, on
    its paths or on junk paths at lines around its sizes, with all kinds of start lines."""
    anchors = sorted(rows)
    top = max((line for _, _, line in anchors), default=0) + 3

    @st.composite
    def one(draw: st.DrawFn) -> Finding:
        aim = draw(st.sampled_from(["anchor", "range", "path", "junk"]))
        start: int | None
        if aim in ("anchor", "range") and anchors:
            path, side, line = draw(st.sampled_from(anchors))
            earlier = [n for p, s, n in anchors if (p, s) == (path, side) and n < line]
            if aim == "range" and earlier:
                start = draw(st.sampled_from(earlier))  # same hunk or not: both must be seen
            else:
                start = draw(st.none() | st.integers(0, 5).map(lambda back: line - back))
        else:
            pool = paths if aim == "path" and paths else list(_JUNK)
            path = draw(st.sampled_from(pool))
            side = draw(st.sampled_from(["RIGHT", "LEFT"]))
            line = draw(st.integers(-2, top))
            start = draw(
                st.none()
                | st.integers(-2, top)
                | st.integers(0, 5).map(lambda back: line - back)
                | st.integers(1, 3).map(lambda ahead: line + ahead)
            )
        suggestion = draw(st.none() | st.just("fixed()"))
        return finding(path, line, side, start, suggestion)

    return one()


CHANGED = {"RIGHT": "+", "LEFT": "-"}  # the patch mark of a changed line on each side


@settings(max_examples=200, deadline=None)
@given(case=_diffs(), data=st.data())
def test_placed_comments_are_rows_github_accepts(
    case: tuple[str, dict[str, str]], data: st.DataObject
) -> None:
    text, patches = case
    diff = parse_diff(text)
    assert all(f.problem is None for f in diff.files)
    rows = _github_rows(patches)
    mode = data.draw(st.sampled_from(PlacementMode))
    paths = [f.path for f in diff.files]
    findings = data.draw(st.lists(_findings(rows, paths), min_size=1, max_size=20))

    placed, demoted = place_all(findings, diff, mode)

    assert len(placed) + len(demoted) == len(findings)
    for f, p in placed:
        assert (p.path, p.side, p.line) == (f.path, f.side, f.line)
        end = rows.get((p.path, p.side, p.line))
        assert end is not None, "GitHub: line must be part of the diff"
        first = p.line
        if p.start_line is not None:
            assert p.start_line == f.start_line
            assert p.start_side == p.side
            start = rows.get((p.path, p.side, p.start_line))
            assert start is not None, "GitHub: start line must be part of the same hunk"
            assert start.hunk == end.hunk, "GitHub: start line must be part of the same hunk"
            assert start.index < end.index, "GitHub: start line must precede the end line"
            first = p.start_line
        else:
            assert p.start_side is None
            assert f.start_line in (None, f.line)
        if mode is PlacementMode.ADDED:
            for n in range(first, p.line + 1):
                assert rows[p.path, p.side, n].kind == CHANGED[p.side]
        if f.suggestion is not None:
            assert p.side == "RIGHT"
        if mode is PlacementMode.ADDED:  # ADDED places a subset of DIFF_CONTEXT, identically
            assert place(f, diff, PlacementMode.DIFF_CONTEXT) == p
    for _, reason in demoted:
        assert reason in set(Reason)

    # completeness: every row of the contract (docs/platform.md: RIGHT for added and context
    # lines, LEFT for deleted ones) takes a one-line comment, in ADDED mode iff the line
    # changed. GitHub also takes LEFT on a context line; depthgate never aims there.
    for (path, side, line), row in rows.items():
        if side == "LEFT" and row.kind != "-":
            continue
        one_line = finding(path, line, side)
        expected = at(path, line, side)
        assert place(one_line, diff, PlacementMode.DIFF_CONTEXT) == expected
        assert place(one_line, diff, PlacementMode.ADDED) == (
            expected if row.kind == CHANGED[side] else "not_an_added_line"
        )
