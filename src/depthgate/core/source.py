"""The code around the change: what the source port hands the core (design §9).

The diff says what changed; review at function, module and PR scope needs the files themselves.
The surfaces find them -- a local git work tree (CLI ``--repo``), the Actions checkout where it
hashes to the head blob, GitHub (one batched read) -- and hand the core a :class:`Sources`: per
changed file, the old and new text when they could be had, and otherwise why not. The core never
fetches; without sources it reviews from the diff alone (:data:`DIFF_ONLY`), and says so.

Content is only used when it is the content the diff was made from: :func:`git_blob_id` is git's own
object id, checked against the ``index`` line of a git diff or the ``sha`` of GitHub's files API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from depthgate.core.diff import FileDiff, LineKind

Side = Literal["old", "new"]


class SourceMode(StrEnum):
    REPO = "repo"  # a local git repository (CLI --repo DIR)
    CHECKOUT = "checkout"  # the Actions workspace, where each file hashes to the head blob
    GITHUB = "github"  # read from GitHub (Action fallback, the App)
    DIFF = "diff"  # no source: the hunks and git's context lines only


@dataclass(frozen=True, slots=True)
class FileSource:
    """One changed file's content on both sides, as far as it could be had.

    ``path`` is the file's new path (the old path of a deleted file). A side is ``None`` when it
    does not exist (added or deleted file) or could not be used; ``missing`` then says why, in the
    words the plan and the summary show ("file over 1 MB", "content does not match the diff").
    """

    path: str
    old_text: str | None
    new_text: str | None
    missing: str | None = None


@dataclass(frozen=True)
class Sources:
    mode: SourceMode = SourceMode.DIFF
    files: Mapping[str, FileSource] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # warnings for the run: mismatches, caps reached

    def get(self, path: str) -> FileSource | None:
        return self.files.get(path)


DIFF_ONLY = Sources()


@dataclass(frozen=True, slots=True)
class BlobRequest:
    """One file to read: by git object id (``oid``), or as ``path`` at commit ``rev``.

    ``key`` is the caller's name for the answer (e.g. ``"new:src/app.py"``).
    """

    key: str
    oid: str | None = None
    rev: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if (self.oid is None) == (self.rev is None or self.path is None):
            raise ValueError("a BlobRequest names either an oid, or a rev and a path")


@dataclass(frozen=True, slots=True)
class Blob:
    """What a source port found for one :class:`BlobRequest`."""

    text: str | None  # None: not found, binary, over the cap, or not UTF-8 (see ``problem``)
    oid: str | None = None  # git's object id of what was read, when the reader knows it
    size: int | None = None  # bytes
    problem: str | None = None


def git_blob_id(content: bytes) -> str:
    """git's object id of a file with this content (``git hash-object``)."""
    header = b"blob %d\0" % len(content)
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()


def describe_size(n: int) -> str:
    """``1 MB``, ``512 KB``, ``900 bytes``: sizes as the plan and the summary show them."""
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MB"
    if n >= 1 << 10:
        return f"{round(n / 1024)} KB"
    return f"{n} bytes"


def blob_matches(expected: str | None, content: bytes) -> bool:
    """True when ``content`` is the blob ``expected`` names; an abbreviated id (a diff's
    ``index`` line) matches by prefix. No expected id: nothing to check against, so False."""
    if not expected:
        return False
    return git_blob_id(content).startswith(expected.lower())


def agrees_with_diff(f: FileDiff, side: Side, text: str) -> bool:
    """Every line the diff shows of ``side`` is that line of ``text``: the check for content
    that has no blob id to compare (an old side read at the base branch, not the merge base)."""
    lines = text.split("\n")
    skip = LineKind.ADDED if side == "old" else LineKind.DELETED
    for hunk in f.hunks:
        for ln in hunk.lines:
            number = ln.old_no if side == "old" else ln.new_no
            if ln.kind is skip or number is None:
                continue
            if number > len(lines) or lines[number - 1].rstrip("\r") != ln.text.rstrip("\r"):
                return False
    return True


@dataclass(frozen=True, slots=True)
class SourceCaps:
    """How much source a run reads: per file and per PR, in bytes (``limits.source_max_*``)."""

    file_bytes: int = 1 << 20
    pr_bytes: int = 8 << 20


class SourceBuilder:
    """Collects what a surface found, side by side, under the caps, into :class:`Sources`.

    A side that could not be used makes the whole file diff-only (half a file's context is worse
    than none: the old and new definitions would not line up), with the first reason given.
    """

    def __init__(self, mode: SourceMode, caps: SourceCaps) -> None:
        self.mode = mode
        self.caps = caps
        self._sides: dict[str, dict[Side, str | None]] = {}
        self._missing: dict[str, str] = {}
        self._notes: list[str] = []
        self._used = 0

    @property
    def failed(self) -> frozenset[str]:
        return frozenset(self._missing)

    def add(self, path: str, side: Side, text: str | None) -> None:
        """One side's content; ``None`` for a side that does not exist (added/deleted file)."""
        if path in self._missing:
            return
        if text is not None:
            size = len(text.encode("utf-8", "surrogateescape"))
            if size > self.caps.file_bytes:
                self.fail(path, f"file over {describe_size(self.caps.file_bytes)}")
                return
            if self._used + size > self.caps.pr_bytes:
                self.fail(path, f"the PR's source is over {describe_size(self.caps.pr_bytes)}")
                return
            self._used += size
        self._sides.setdefault(path, {})[side] = text

    def fail(self, path: str, reason: str, *, warn: bool = False) -> None:
        """``path`` is reviewed from the diff alone; ``warn``: also a warning for the run."""
        self._missing.setdefault(path, reason)
        self._sides.pop(path, None)
        if warn:
            self._notes.append(f"{path}: {reason}; reviewed from the diff alone")

    def note(self, text: str) -> None:
        self._notes.append(text)

    def build(self) -> Sources:
        files: dict[str, FileSource] = {}
        for path, sides in self._sides.items():
            files[path] = FileSource(path, sides.get("old"), sides.get("new"))
        for path, reason in self._missing.items():
            files[path] = FileSource(path, None, None, missing=reason)
        return Sources(self.mode, files, tuple(self._notes))
