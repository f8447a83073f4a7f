"""Unified diffs -> an immutable model of files, hunks, lines and commentable anchors.

Three inputs are read, all through unidiff: ``git diff`` output, GitHub's
``application/vnd.github.diff`` text (the same format), and the per-file ``patch`` strings of
GitHub's files API (hunks without file headers). The model keeps what later stages need and
nothing else: paths as GitHub names them, each hunk's ranges and lines with their old and new
numbers, and the anchors GitHub accepts for review comments:

* ``RIGHT``: added and context lines, by their new line number;
* ``LEFT``: deleted lines, by their old line number.

A file that cannot be parsed (a malformed hunk header, counts that do not add up) does not stop
the others: it is kept with no hunks and ``problem`` saying what was wrong, so every file ends in
a defined state. Text that is not a diff at all raises :class:`DiffError`.

This module is pure: it takes text and returns values.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any, NamedTuple

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from depthgate.core.errors import DiffError

__all__ = [
    "Anchor",
    "Diff",
    "FileDiff",
    "FileKind",
    "FileStatus",
    "Hunk",
    "Line",
    "LineKind",
    "Side",
    "parse_diff",
    "parse_github_files",
]


class Side(StrEnum):
    LEFT = "LEFT"
    RIGHT = "RIGHT"


class LineKind(StrEnum):
    ADDED = "added"
    DELETED = "deleted"
    CONTEXT = "context"


class FileStatus(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    COPIED = "copied"


class FileKind(StrEnum):
    REGULAR = "regular"
    SYMLINK = "symlink"
    SUBMODULE = "submodule"


class Anchor(NamedTuple):
    """A place GitHub accepts a review comment: ``(path, side, line)``."""

    path: str
    side: Side
    line: int


class Line(NamedTuple):
    """One line of a hunk. A NamedTuple: immutable, and cheap to build by the hundred thousand."""

    kind: LineKind
    text: str  # without the +/-/space prefix and without the line terminator
    old_no: int | None
    new_no: int | None


@dataclass(frozen=True, slots=True)
class Hunk:
    path: str  # the file's path on the side that exists (new path, or old path for deletions)
    index: int  # position of the hunk in its file, from 0
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    section: str
    lines: tuple[Line, ...]
    old_missing_newline: bool = False  # "\ No newline at end of file" after the old side's end
    new_missing_newline: bool = False  # ... after the new side's end
    # "@@ -a,b +c,d @@ section": derived, computed once (it keys hunks in plans and notes)
    header: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        head = f"@@ -{self.old_start},{self.old_lines} +{self.new_start},{self.new_lines} @@"
        object.__setattr__(self, "header", f"{head} {self.section}" if self.section else head)

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind is LineKind.ADDED)

    @property
    def deleted(self) -> int:
        return sum(1 for line in self.lines if line.kind is LineKind.DELETED)

    def anchor_lines(self) -> tuple[list[int], list[int]]:
        """``(RIGHT, LEFT)`` line numbers in one pass: new numbers of added and context lines,
        old numbers of deleted lines."""
        right: list[int] = []
        left: list[int] = []
        deleted = LineKind.DELETED
        for ln in self.lines:
            if ln.kind is deleted:
                left.append(ln.old_no)  # type: ignore[arg-type]  # deleted lines have one
            else:
                right.append(ln.new_no)  # type: ignore[arg-type]  # the others have one
        return right, left

    def line_text(self, side: Side, number: int) -> str | None:
        """The text of the line an anchor points at: a deleted line by its old number (LEFT),
        an added or context line by its new number (RIGHT); None when the hunk has no such
        line."""
        left = side is Side.LEFT
        for ln in self.lines:
            if (ln.old_no if left else ln.new_no) == number and (
                ln.kind is LineKind.DELETED
            ) == left:
                return ln.text
        return None

    def anchors(self) -> Iterator[Anchor]:
        for line in self.lines:
            if line.kind is LineKind.DELETED:
                assert line.old_no is not None
                yield Anchor(self.path, Side.LEFT, line.old_no)
            else:
                assert line.new_no is not None
                yield Anchor(self.path, Side.RIGHT, line.new_no)


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str  # new path; the old path for a deleted file
    old_path: str | None  # None for an added file
    status: FileStatus
    kind: FileKind = FileKind.REGULAR
    old_mode: str | None = None
    new_mode: str | None = None
    binary: bool = False
    similarity: int | None = None  # git's similarity index for renames and copies, in percent
    hunks: tuple[Hunk, ...] = ()
    line_endings: str = "none"  # lf | crlf | mixed | none (no lines)
    # Why the content is not available, when it is not: "malformed: ...", "patch_omitted", ...
    problem: str | None = None
    # git's blob ids of the two sides as the diff names them (``index <old>..<new>``, possibly
    # abbreviated; the files API's full ``sha`` for the new side); None where there is none
    old_blob: str | None = None
    new_blob: str | None = None

    @property
    def mode_changed(self) -> bool:
        return (
            self.old_mode is not None
            and self.new_mode is not None
            and self.old_mode != self.new_mode
        )


@dataclass(frozen=True)
class Diff:
    files: tuple[FileDiff, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def hunks(self) -> Iterator[Hunk]:
        for f in self.files:
            yield from f.hunks

    @cached_property
    def anchors(self) -> Mapping[Anchor, Hunk]:
        """Every commentable ``(path, side, line)`` of the diff, mapped to the hunk holding it."""
        return {anchor: hunk for hunk in self.hunks for anchor in hunk.anchors()}

    def file(self, path: str) -> FileDiff | None:
        for f in self.files:
            if f.path == path:
                return f
        return None


# --------------------------------------------------------------------------------------------
# Parsing

_GIT_HEADER = "diff --git "
_PREFIX = re.compile(r"^[abciow12]/")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_OCTAL = re.compile(r"\\([0-7]{1,3}|.)", re.DOTALL)
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def parse_diff(data: str | bytes) -> Diff:
    """Parse ``git diff`` / GitHub diff text.

    Bytes are decoded as UTF-8; invalid sequences are replaced (U+FFFD) and reported in
    ``Diff.warnings`` rather than failing the whole diff. Raises :class:`DiffError` when the text
    holds no diff at all.
    """
    warnings: list[str] = []
    if isinstance(data, bytes):
        text = data.decode("utf-8", errors="replace")
        if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
            warnings.append("input is not valid UTF-8: invalid bytes were replaced by U+FFFD")
    else:
        text = data
    newlines = text.count("\n")
    if newlines and text.count("\r\n") == newlines:
        # The whole diff (headers included) was saved with CRLF endings: undo that, or every
        # path would end in "\r". Content CRs inside an LF diff are kept (see line_endings).
        text = text.replace("\r\n", "\n")
        warnings.append("the diff itself had CRLF line endings; they were read as LF")

    chunks = list(_split_files(text))
    if not chunks:
        if text.strip():
            raise DiffError(
                "input is not a unified diff: no 'diff --git', '---'/'+++' or '@@' header found"
            )
        return Diff(files=(), warnings=tuple(warnings))
    files = tuple(_parse_chunk(chunk) for chunk in chunks)
    return Diff(files=files, warnings=tuple(warnings))


def parse_github_files(files: Sequence[Mapping[str, Any]]) -> Diff:
    """Build a Diff from GitHub's ``GET /pulls/{n}/files`` items.

    Each item's ``patch`` is a bare list of hunks. GitHub leaves ``patch`` out for binary files
    and for files too large to show; those are kept with ``problem`` set, never dropped.
    """
    out: list[FileDiff] = []
    for item in files:
        path = str(item["filename"])
        api_status = str(item.get("status", "modified"))
        previous = item.get("previous_filename")
        status = {
            "added": FileStatus.ADDED,
            "removed": FileStatus.DELETED,
            "renamed": FileStatus.RENAMED,
            "copied": FileStatus.COPIED,
        }.get(api_status, FileStatus.MODIFIED)
        old_path = None if status is FileStatus.ADDED else str(previous or path)
        sha = item.get("sha")
        # the files API's ``sha`` is the head blob (GitHub gives none for the base side)
        new_blob = str(sha) if sha and status is not FileStatus.DELETED else None
        patch = item.get("patch")
        if patch is None:
            changes = int(item.get("changes", 0) or 0)
            binary = changes == 0 and status is not FileStatus.RENAMED
            out.append(
                FileDiff(
                    path=path,
                    old_path=old_path,
                    status=status,
                    binary=binary,
                    problem=None if binary or changes == 0 else "patch_omitted",
                    new_blob=new_blob,
                )
            )
            continue
        # The file headers only tell unidiff where the hunks belong; names come from the API.
        src = "/dev/null" if status is FileStatus.ADDED else "a/file"
        dst = "/dev/null" if status is FileStatus.DELETED else "b/file"
        body = str(patch)
        if not body.endswith("\n"):
            body += "\n"
        parsed = _parse_chunk(f"--- {src}\n+++ {dst}\n{body}")
        hunks = tuple(replace(h, path=path) for h in parsed.hunks)
        out.append(
            FileDiff(
                path=path,
                old_path=old_path,
                status=status,
                hunks=hunks,
                line_endings=parsed.line_endings,
                problem=parsed.problem,
                new_blob=new_blob,
            )
        )
    return Diff(files=tuple(out))


_GIT_FILE = re.compile(r"^diff --git ", re.MULTILINE)
_PLAIN_FILE = re.compile(r"^--- [^\n]*\n\+\+\+ ", re.MULTILINE)
_HUNK_LINE = re.compile(r"^@@", re.MULTILINE)


def _split_files(text: str) -> Iterator[str]:
    """Cut the text into one chunk per file, so one malformed file cannot sink the others."""
    starts = [m.start() for m in _GIT_FILE.finditer(text)]
    if not starts:
        # A plain unified diff: a file starts at a "---" line directly followed by "+++".
        starts = [m.start() for m in _PLAIN_FILE.finditer(text)]
    if not starts and re.search(r"^@@ ", text, re.MULTILINE):
        raise DiffError(
            "input has hunks but no file headers ('diff --git' or '---'/'+++'): it looks like "
            "one file's patch from GitHub's files API; give the whole PR diff instead "
            "(git diff, or the PR's .diff URL)"
        )
    for n, start in enumerate(starts):
        yield text[start : starts[n + 1] if n + 1 < len(starts) else len(text)]


def _hunk_header_lines(chunk: str) -> list[int]:
    """Indexes of the lines of ``chunk`` that start with "@@" (hunk headers, well-formed or not)."""
    out = []
    line = pos = 0
    for m in _HUNK_LINE.finditer(chunk):
        line += chunk.count("\n", pos, m.start())
        pos = m.start()
        out.append(line)
    return out


def _split_lines(text: str) -> list[str]:
    """Lines ending in "\n", as git writes them. Not str.splitlines(): that also splits on form
    feeds, U+2028 and lone CRs, which are content inside a diff line."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass
class _Header:
    """What git's extended header lines say about one file."""

    git_old: str | None = None
    git_new: str | None = None
    old_mode: str | None = None
    new_mode: str | None = None
    added: bool = False
    deleted: bool = False
    rename_from: str | None = None
    rename_to: str | None = None
    copy_from: str | None = None
    copy_to: str | None = None
    similarity: int | None = None
    index_mode: str | None = None
    old_blob: str | None = None
    new_blob: str | None = None
    binary: bool = False


def _read_header(chunk: list[str]) -> _Header:
    h = _Header()
    for raw in chunk:
        if raw.startswith("@@ "):
            break
        line = raw.rstrip("\r\n")
        if line.startswith(_GIT_HEADER):
            h.git_old, h.git_new = _split_git_header(line[len(_GIT_HEADER) :])
        elif line.startswith("old mode "):
            h.old_mode = line[9:].strip()
        elif line.startswith("new mode "):
            h.new_mode = line[9:].strip()
        elif line.startswith("new file mode "):
            h.added, h.new_mode = True, line[14:].strip()
        elif line.startswith("deleted file mode "):
            h.deleted, h.old_mode = True, line[18:].strip()
        elif line.startswith("rename from "):
            h.rename_from = _unquote(line[12:])
        elif line.startswith("rename to "):
            h.rename_to = _unquote(line[10:])
        elif line.startswith("copy from "):
            h.copy_from = _unquote(line[10:])
        elif line.startswith("copy to "):
            h.copy_to = _unquote(line[8:])
        elif line.startswith("similarity index "):
            h.similarity = _percent(line[17:])
        elif line.startswith("index "):
            parts = line.split()
            if len(parts) == 3:
                h.index_mode = parts[2]
            if len(parts) >= 2:
                h.old_blob, h.new_blob = _blob_ids(parts[1])
        elif line.startswith(("Binary files ", "GIT binary patch")):
            h.binary = True
    return h


_BLOB_ID = re.compile(r"[0-9a-f]{4,64}")


def _blob_ids(text: str) -> tuple[str | None, str | None]:
    """``abc1234..def5678`` -> both ids; git's all-zero id (no such side) -> None."""
    old, sep, new = text.partition("..")
    if not sep:
        return None, None

    def one(oid: str) -> str | None:
        return oid if _BLOB_ID.fullmatch(oid) and oid.strip("0") else None

    return one(old), one(new)


def _percent(text: str) -> int | None:
    digits = text.strip().rstrip("%")
    return int(digits) if digits.isdigit() else None


def _split_git_header(rest: str) -> tuple[str | None, str | None]:
    """Split ``a/<old> b/<new>`` as git does, quoted names and spaces included."""
    if rest.startswith('"'):
        end = _closing_quote(rest, 0)
        old = _unquote(rest[: end + 1])
        new = _unquote(rest[end + 1 :].strip())
        return _strip_prefix(old), _strip_prefix(new)
    if rest.endswith('"'):
        start = rest.rfind(' "')
        return _strip_prefix(rest[:start]), _strip_prefix(_unquote(rest[start + 1 :]))
    # Unquoted names may contain spaces; when both names are equal (the common case for a
    # header with no ---/+++ lines) the split point is the middle, which is what git does.
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[:half][2:] == rest[half + 1 :][2:]:
        return _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])
    marker = rest.find(" b/")
    if marker == -1:
        return None, None
    return _strip_prefix(rest[:marker]), _strip_prefix(rest[marker + 1 :])


def _closing_quote(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return len(text) - 1


def _unquote(name: str) -> str:
    """Undo git's C-style quoting (``"caf\\303\\251.txt"``) of a path."""
    name = name.strip()
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body = name[1:-1]
    out = bytearray()
    pos = 0
    for m in _OCTAL.finditer(body):
        out += body[pos : m.start()].encode("utf-8")
        esc = m.group(1)
        if esc[0] in "01234567":
            out.append(int(esc, 8) & 0xFF)
        else:
            out.append(_C_ESCAPES.get(esc, ord(esc[0]) if ord(esc[0]) < 256 else 63))
        pos = m.end()
    out += body[pos:].encode("utf-8")
    return out.decode("utf-8", errors="replace")


def _strip_prefix(path: str | None) -> str | None:
    if path is None or path == "/dev/null":
        return None
    path = _unquote(path)
    return path[2:] if _PREFIX.match(path) else path


def _parse_chunk(text: str) -> FileDiff:
    chunk = _split_lines(text)
    header = _read_header(chunk)
    try:
        # unidiff checks the structure (headers, counts, line types); metadata_only skips building
        # its own line objects, since _convert_hunks builds ours from the same lines.
        patch = PatchSet(chunk, metadata_only=True)
    except UnidiffParseError as exc:
        return _unparsed(header, f"malformed: {exc}".splitlines()[0][:200])
    except UnicodeError as exc:  # unidiff re-encodes lines as it reads them
        return _unparsed(header, f"malformed: {exc}"[:200])
    if len(patch) != 1:
        return _unparsed(header, f"malformed: expected one file in this part, found {len(patch)}")
    pf = patch[0]
    hunk_starts = _hunk_header_lines(text)
    if len(hunk_starts) != len(pf):
        headers = (chunk[i] for i in hunk_starts)
        bad = next((ln for ln in headers if not _HUNK.match(ln)), "@@").rstrip("\r\n")
        return _unparsed(header, f"malformed: hunk header not understood: {bad[:80]!r}")

    if header.git_old is not None or header.git_new is not None:
        # git's own header: split the way git writes it (quoting, spaces in names)
        src, dst = header.git_old, header.git_new
    else:
        src, dst = _strip_prefix(pf.source_file), _strip_prefix(pf.target_file)
    if header.added or pf.source_file == "/dev/null":
        src = None
    if header.deleted or pf.target_file == "/dev/null":
        dst = None

    status = FileStatus.MODIFIED
    old_path, new_path = src, dst
    if header.rename_from is not None and header.rename_to is not None:
        status, old_path, new_path = FileStatus.RENAMED, header.rename_from, header.rename_to
    elif header.copy_from is not None and header.copy_to is not None:
        status, old_path, new_path = FileStatus.COPIED, header.copy_from, header.copy_to
    elif new_path is None:
        status = FileStatus.DELETED
    elif old_path is None:
        status = FileStatus.ADDED
    path = new_path if new_path is not None else old_path
    if path is None:
        return _unparsed(header, "malformed: no file name in the header")

    old_mode = header.old_mode or (None if status is FileStatus.ADDED else header.index_mode)
    new_mode = header.new_mode or (None if status is FileStatus.DELETED else header.index_mode)
    mode = new_mode or old_mode
    kind = (
        FileKind.SYMLINK
        if mode == "120000"
        else FileKind.SUBMODULE
        if mode == "160000"
        else FileKind.REGULAR
    )

    hunks, crlf, lf = _convert_hunks(pf, chunk, hunk_starts, path)
    endings = "mixed" if crlf and lf else "crlf" if crlf else "lf" if lf else "none"
    return FileDiff(
        path=path,
        old_path=None if status is FileStatus.ADDED else old_path,
        status=status,
        kind=kind,
        old_mode=old_mode,
        new_mode=new_mode,
        binary=header.binary or pf.is_binary_file,
        similarity=header.similarity,
        hunks=tuple(hunks),
        line_endings=endings,
        old_blob=None if status is FileStatus.ADDED else header.old_blob,
        new_blob=None if status is FileStatus.DELETED else header.new_blob,
    )


_new_line = tuple.__new__


def _convert_hunks(
    pf: Any, chunk: list[str], hunk_starts: list[int], path: str
) -> tuple[list[Hunk], int, int]:
    """Build our hunks from the chunk's lines, where unidiff found (and validated) them.

    Also counts CRLF and LF content lines. unidiff has already checked that every body line is
    ``+``, ``-``, `` ``, ``\\`` or blank and that the counts add up, so this walk cannot fail.
    """
    hunks: list[Hunk] = []
    crlf = lf = 0
    added, deleted, context = LineKind.ADDED, LineKind.DELETED, LineKind.CONTEXT
    ends = [*hunk_starts[1:], len(chunk)] if hunk_starts else []
    for index, (uh, start, end) in enumerate(zip(pf, hunk_starts, ends, strict=True)):
        lines: list[Line] = []
        append = lines.append
        old_no, new_no = uh.source_start, uh.target_start
        left = uh.source_length + uh.target_length  # each line uses up one or two of these
        old_missing = new_missing = False
        for raw in itertools.islice(chunk, start + 1, end):
            first = raw[0]
            if first == "\\":
                prev = lines[-1].kind if lines else None
                old_missing = old_missing or prev is deleted or prev is context
                new_missing = new_missing or prev is added or prev is context
                continue
            if left <= 0:
                break
            text = raw[1:].rstrip("\n") if first in "+- " else ""
            if text[-1:] == "\r":
                text = text[:-1]
                crlf += 1
            else:
                lf += 1
            # tuple.__new__ is what Line(...) runs, minus a Python-level frame: this loop runs
            # once per diff line and is most of the parse's own time.
            if first == "+":
                append(_new_line(Line, (added, text, None, new_no)))
                new_no += 1
                left -= 1
            elif first == "-":
                append(_new_line(Line, (deleted, text, old_no, None)))
                old_no += 1
                left -= 1
            else:  # " " or a blank line (context whose leading space was lost)
                append(_new_line(Line, (context, text, old_no, new_no)))
                old_no += 1
                new_no += 1
                left -= 2
        hunks.append(
            Hunk(
                path=path,
                index=index,
                old_start=uh.source_start,
                old_lines=uh.source_length,
                new_start=uh.target_start,
                new_lines=uh.target_length,
                section=uh.section_header.rstrip("\r\n"),
                lines=tuple(lines),
                old_missing_newline=old_missing,
                new_missing_newline=new_missing,
            )
        )
    return hunks, crlf, lf


def _unparsed(header: _Header, problem: str) -> FileDiff:
    path = header.rename_to or header.git_new or header.git_old or "(unknown)"
    status = (
        FileStatus.ADDED
        if header.added
        else FileStatus.DELETED
        if header.deleted
        else FileStatus.MODIFIED
    )
    return FileDiff(
        path=path,
        old_path=None if header.added else (header.rename_from or header.git_old or path),
        status=status,
        binary=header.binary,
        problem=problem,
    )


# --------------------------------------------------------------------------------------------
# Plain data, for JSON output and golden files


def hunk_to_dict(hunk: Hunk) -> dict[str, Any]:
    right, left = hunk.anchor_lines()
    return {
        "header": hunk.header,
        "old_start": hunk.old_start,
        "old_lines": hunk.old_lines,
        "new_start": hunk.new_start,
        "new_lines": hunk.new_lines,
        "section": hunk.section,
        "added": hunk.added,
        "deleted": hunk.deleted,
        "old_missing_newline": hunk.old_missing_newline,
        "new_missing_newline": hunk.new_missing_newline,
        "anchors": {"RIGHT": right, "LEFT": left},
    }


def file_to_dict(f: FileDiff) -> dict[str, Any]:
    return {
        "path": f.path,
        "old_path": f.old_path,
        "status": f.status.value,
        "kind": f.kind.value,
        "old_mode": f.old_mode,
        "new_mode": f.new_mode,
        "binary": f.binary,
        "similarity": f.similarity,
        "line_endings": f.line_endings,
        "problem": f.problem,
    }


def diff_to_dict(diff: Diff) -> dict[str, Any]:
    """The diff model as plain data: the shape of the golden files under tests/data/diffs."""
    return {
        "warnings": list(diff.warnings),
        "files": [
            {**file_to_dict(f), "hunks": [hunk_to_dict(h) for h in f.hunks]} for f in diff.files
        ],
    }
