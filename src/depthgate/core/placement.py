"""Placement: which findings can be posted as inline review comments, and which cannot.

GitHub rejects a whole review with 422 when a single comment is off the diff, and the error does
not say which one (github.md, "Posting a review"). So every finding the model returns is checked
here against the parsed diff of the reviewed head before anything is posted (threats.md T3): it
is either *placed* (:class:`Placed`, an anchor GitHub accepts) or demoted to the summary with a
short machine-readable reason. Nothing the model says is trusted: paths, lines and sides are
checked as values, even though :class:`~depthgate.core.models.Finding` validates their types.

Two modes decide which lines of the diff may carry a comment:

* :attr:`PlacementMode.DIFF_CONTEXT` (the default): any commentable line, that is any anchor of
  :attr:`Diff.anchors <depthgate.core.diff.Diff.anchors>` (RIGHT: added and context lines by new
  number; LEFT: deleted lines by old number);
* :attr:`PlacementMode.ADDED`: only lines the PR changes: added lines (RIGHT) and deleted lines
  (LEFT). For a range, every line of the range on its side must be added (RIGHT) or deleted
  (LEFT).

Reasons (:class:`Reason`, a ``StrEnum``, so each is also the plain string), in the order they
are checked; the first failing check is the one reported:

``invalid_path``
    The path is not a plain relative POSIX path: empty, absolute (leading ``/``), containing a
    backslash, an empty segment (``a//b``, trailing ``/``), a ``.`` or ``..`` segment, or a
    control character (Unicode category ``Cc``: NUL, C0, DEL, C1). Checked before the diff is
    consulted, so a path of this shape is refused even if a file of that name is in the diff.
``path_not_in_diff``
    A well-formed path that is not the path of any file in the diff. Paths match exactly (no
    case folding, no Unicode normalization); a renamed file's old path does not match.
``file_has_no_hunks``
    The file is in the diff but has no hunks, so nothing in it can carry a comment: binary
    files, pure renames, mode-only changes, empty added files, files whose patch was omitted or
    could not be parsed.
``invalid_side``
    The side is neither ``"RIGHT"`` nor ``"LEFT"`` (only reachable with an unvalidated finding).
``invalid_line``
    The line is not an ``int`` of at least 1 (``bool`` and numeric strings such as ``"12"``
    are refused).
``invalid_start_line``
    ``start_line`` is given but is not an ``int`` of at least 1.
``left_on_added_file``
    The side is LEFT and the file was added: an added file has no old lines.
``line_not_in_diff``
    ``(path, side, line)`` is not an anchor of the diff.
``start_after_line``
    ``start_line`` is after ``line`` (GitHub: "start line must precede the end line").
    ``start_line == line`` is not an error: the comment is posted as a single-line comment
    (``start_line`` left out; GitHub answers 422 to ``start_line == line``).
``start_not_in_diff``
    ``(path, side, start_line)`` is not an anchor of the diff. A range is always on one side.
``start_in_other_hunk``
    ``start_line`` and ``line`` are anchors of different hunks (GitHub: "start line must be
    part of the same hunk as the line").
``not_an_added_line``
    Mode ``ADDED`` only: the line, or a line of the range, is a context line.
``suggestion_on_left``
    The finding carries a suggestion but is on the LEFT side: a suggestion replaces lines of the
    new file and GitHub does not offer it on deleted lines. The finding goes to the summary
    (with its suggestion) rather than being posted with the suggestion silently dropped.

This module is pure: it takes values and returns values.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

from depthgate.core.diff import Anchor, Diff, FileStatus, Hunk, LineKind, Side
from depthgate.core.models import Finding

__all__ = ["Placed", "PlacementMode", "Reason", "place", "place_all"]


class PlacementMode(StrEnum):
    ADDED = "added"  # only lines the PR adds (RIGHT, kind added) or deletes (LEFT)
    DIFF_CONTEXT = "diff_context"  # any commentable line of the diff (added, deleted, context)


class Reason(StrEnum):
    """Why a finding cannot be posted inline (see the module docstring for each)."""

    INVALID_PATH = "invalid_path"
    PATH_NOT_IN_DIFF = "path_not_in_diff"
    FILE_HAS_NO_HUNKS = "file_has_no_hunks"
    INVALID_SIDE = "invalid_side"
    INVALID_LINE = "invalid_line"
    INVALID_START_LINE = "invalid_start_line"
    LEFT_ON_ADDED_FILE = "left_on_added_file"
    LINE_NOT_IN_DIFF = "line_not_in_diff"
    START_AFTER_LINE = "start_after_line"
    START_NOT_IN_DIFF = "start_not_in_diff"
    START_IN_OTHER_HUNK = "start_in_other_hunk"
    NOT_AN_ADDED_LINE = "not_an_added_line"
    SUGGESTION_ON_LEFT = "suggestion_on_left"


@dataclass(frozen=True, slots=True)
class Placed:
    """An anchor GitHub accepts for a review comment, in the shape of its ``comments[]`` item."""

    path: str
    line: int
    side: str  # "RIGHT" | "LEFT"
    start_line: int | None  # None for a single-line comment; otherwise < line, same hunk
    start_side: str | None  # == side when start_line is set, else None


def place(
    finding: Finding, diff: Diff, mode: PlacementMode = PlacementMode.DIFF_CONTEXT
) -> Placed | str:
    """Return where ``finding`` can be posted inline, or the :class:`Reason` it cannot."""
    path: object = finding.path
    if not isinstance(path, str) or not _well_formed(path):
        return Reason.INVALID_PATH
    files = [f for f in diff.files if f.path == path]
    if not files:
        return Reason.PATH_NOT_IN_DIFF
    if not any(f.hunks for f in files):
        return Reason.FILE_HAS_NO_HUNKS

    side_value: object = finding.side
    if side_value == Side.RIGHT:
        side = Side.RIGHT
    elif side_value == Side.LEFT:
        side = Side.LEFT
    else:
        return Reason.INVALID_SIDE
    line: object = finding.line
    if not _is_line_number(line):
        return Reason.INVALID_LINE
    start_value: object = finding.start_line
    start: int | None
    if start_value is None:
        start = None
    elif _is_line_number(start_value):
        start = start_value
    else:
        return Reason.INVALID_START_LINE

    anchors = diff.anchors
    hunk = anchors.get(Anchor(path, side, line))
    if hunk is None:
        if side is Side.LEFT and all(f.status is FileStatus.ADDED for f in files):
            return Reason.LEFT_ON_ADDED_FILE
        return Reason.LINE_NOT_IN_DIFF

    if start == line:
        start = None  # one line: GitHub answers 422 to start_line == line
    if start is not None:
        if start > line:
            return Reason.START_AFTER_LINE
        start_hunk = anchors.get(Anchor(path, side, start))
        if start_hunk is None:
            return Reason.START_NOT_IN_DIFF
        if start_hunk is not hunk:
            return Reason.START_IN_OTHER_HUNK

    if mode is PlacementMode.ADDED and not _all_changed(
        hunk, side, line if start is None else start, line
    ):
        return Reason.NOT_AN_ADDED_LINE

    if finding.suggestion is not None and side is not Side.RIGHT:
        return Reason.SUGGESTION_ON_LEFT

    return Placed(
        path=path,
        line=line,
        side=side.value,
        start_line=start,
        start_side=None if start is None else side.value,
    )


def place_all(
    findings: Iterable[Finding],
    diff: Diff,
    mode: PlacementMode = PlacementMode.DIFF_CONTEXT,
) -> tuple[list[tuple[Finding, Placed]], list[tuple[Finding, str]]]:
    """Split findings into placed ones and demoted ones (with reasons), each in input order."""
    placed: list[tuple[Finding, Placed]] = []
    demoted: list[tuple[Finding, str]] = []
    for finding in findings:
        result = place(finding, diff, mode)
        if isinstance(result, Placed):
            placed.append((finding, result))
        else:
            demoted.append((finding, result))
    return placed, demoted


def _well_formed(path: str) -> bool:
    if not path or path.startswith("/") or "\\" in path:
        return False
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        return False
    return all(segment not in ("", ".", "..") for segment in path.split("/"))


def _is_line_number(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _all_changed(hunk: Hunk, side: Side, first: int, last: int) -> bool:
    """Whether every line of ``hunk`` numbered ``first..last`` on ``side`` is added (RIGHT) or
    deleted (LEFT). On LEFT, context lines carry old numbers too and are caught here."""
    if side is Side.RIGHT:
        return all(
            ln.kind is LineKind.ADDED
            for ln in hunk.lines
            if ln.new_no is not None and first <= ln.new_no <= last
        )
    return all(
        ln.kind is LineKind.DELETED
        for ln in hunk.lines
        if ln.old_no is not None and first <= ln.old_no <= last
    )
