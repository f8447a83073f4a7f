"""The source port over GitHub: the code around the change for the Action and the App.

New side: in the Action, the workspace checkout (``GITHUB_WORKSPACE``) wherever its file hashes
to the head blob ``sha`` the files API already gave (no extra read); everything else in one
batched GraphQL read (:meth:`~depthgate.github.client.PullRequestClient.read_blobs`, 50 files a
query). With a checkout the old side is read only where context comes from it (a deleted file,
a hunk that only deletes), so a PR whose checkout is its head costs no read for its context (the
Action's 3-file PR stays at 6 GitHub reads with the base config's read). The App has no
checkout and reads both sides of every file that way, with the installation token.

GitHub names no blob for the old side; it is read at the PR's base commit and used only when the
lines the diff shows agree with it (the base branch may have moved past the merge base).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from depthgate.core.diff import Diff, FileDiff, FileKind, FileStatus
from depthgate.core.ports import BlobReader, GitHubFailure, PullRequestInfo
from depthgate.core.routes import Limits
from depthgate.core.source import (
    Blob,
    BlobRequest,
    Side,
    SourceBuilder,
    SourceCaps,
    SourceMode,
    Sources,
    agrees_with_diff,
    blob_matches,
    describe_size,
)

MISMATCH = "content does not match the diff"


class SourcePort:
    """The port a PR review calls once it has the PR and its files. A GitHub failure of the
    read itself leaves the whole review to the diff, and says so; it does not fail the review.

    ``also``: other files to read in the same query (the guideline files at the base commit),
    so that they cost no read of their own when the changed files are read from GitHub anyway;
    :meth:`extra` has them (read on their own when no changed file needed GitHub)."""

    def __init__(
        self,
        reader: BlobReader,
        limits: Limits,
        *,
        checkout: Path | None = None,
        also: Sequence[BlobRequest] = (),
    ) -> None:
        self.reader, self.checkout, self.also = reader, checkout, list(also)
        self.caps = SourceCaps(limits.source_max_file_bytes, limits.source_max_pr_bytes)
        self._extra: dict[str, Blob] | None = None

    def __call__(self, info: PullRequestInfo, diff: Diff) -> Sources:
        try:
            old: Literal["all", "needed"] = "needed" if self.checkout is not None else "all"
            sources, extra = _read_sources(
                self.reader,
                info,
                diff,
                caps=self.caps,
                checkout=self.checkout,
                old_sides=old,
                also=self.also,
            )
        except GitHubFailure as exc:
            return Sources(
                notes=(
                    f"context: diff only -- the changed files could not be read ({exc.message})",
                )
            )
        if extra is not None:
            self._extra = extra
        return sources

    def extra(self) -> Mapping[str, Blob]:
        """The ``also`` files: from the changed files' read, else one read of their own."""
        if self._extra is None:
            try:
                self._extra = (
                    dict(self.reader.read_blobs(self.also, max_bytes=self.caps.file_bytes))
                    if self.also
                    else {}
                )
            except GitHubFailure as exc:  # like the changed files: said, not a failed review
                problem = f"could not be read ({exc.message})"
                self._extra = {r.key: Blob(None, problem=problem) for r in self.also}
        return self._extra


def source_port(
    reader: BlobReader,
    limits: Limits,
    *,
    checkout: Path | None = None,
    also: Sequence[BlobRequest] = (),
) -> SourcePort:
    return SourcePort(reader, limits, checkout=checkout, also=also)


def pr_sources(
    reader: BlobReader,
    info: PullRequestInfo,
    diff: Diff,
    *,
    caps: SourceCaps,
    checkout: Path | None = None,
    old_sides: Literal["all", "needed"] = "all",
) -> Sources:
    """``old_sides="needed"``: read the old side only where context comes from it (a deleted
    file, a hunk that only deletes); the Action does, so that with the checkout at the head a PR
    costs no read at all for its context."""
    return _read_sources(
        reader, info, diff, caps=caps, checkout=checkout, old_sides=old_sides, also=()
    )[0]


def _read_sources(
    reader: BlobReader,
    info: PullRequestInfo,
    diff: Diff,
    *,
    caps: SourceCaps,
    checkout: Path | None,
    old_sides: Literal["all", "needed"],
    also: Sequence[BlobRequest],
) -> tuple[Sources, dict[str, Blob] | None]:
    """The sources, and the ``also`` blobs when the read went to GitHub (None: no read)."""
    files = [f for f in diff.files if f.hunks and f.kind is FileKind.REGULAR and not f.binary]
    from_checkout: dict[str, str] = {}
    if checkout is not None:
        for f in files:
            if f.status is FileStatus.DELETED or not f.new_blob:
                continue
            data, _ = read_regular_file(checkout, f.path, caps.file_bytes)
            if data is not None and blob_matches(f.new_blob, data):
                text = _text(data)
                if text is not None:
                    from_checkout[f.path] = text
    requests: list[BlobRequest] = []
    for f in files:
        wanted = old_sides == "all" or _needs_old(f)
        if f.old_path is not None and info.base_sha and wanted:
            requests.append(BlobRequest(f"old:{f.path}", rev=info.base_sha, path=f.old_path))
        if f.status is not FileStatus.DELETED and f.path not in from_checkout:
            requests.append(BlobRequest(f"new:{f.path}", rev=info.head_sha, path=f.path))
    blobs = (
        dict(reader.read_blobs([*requests, *also], max_bytes=caps.file_bytes)) if requests else {}
    )
    extra = {r.key: blobs[r.key] for r in also if r.key in blobs} if requests else None

    mode = SourceMode.CHECKOUT if from_checkout else SourceMode.GITHUB
    out = SourceBuilder(mode, caps)
    for f in files:
        if old_sides == "all" or _needs_old(f):
            _side(out, f, "old", None if f.old_path is None else blobs.get(f"old:{f.path}"), info)
        else:
            out.add(f.path, "old", None)  # not read: no context comes from it
        if f.path in out.failed:
            continue
        if f.path in from_checkout:
            out.add(f.path, "new", from_checkout[f.path])
        else:
            blob = None if f.status is FileStatus.DELETED else blobs.get(f"new:{f.path}")
            _side(out, f, "new", blob, info)
    if from_checkout and len(from_checkout) < sum(
        f.status is not FileStatus.DELETED for f in files
    ):
        out.note(
            f"{len(from_checkout)} changed files read from the checkout, the rest from GitHub "
            "(the checkout is not the PR's head there)"
        )
    return out.build(), extra


def _needs_old(f: FileDiff) -> bool:
    return f.status is FileStatus.DELETED or any(h.added == 0 < h.deleted for h in f.hunks)


def _side(
    out: SourceBuilder, f: FileDiff, side: Side, blob: Blob | None, info: PullRequestInfo
) -> None:
    exists = (f.old_path is not None) if side == "old" else (f.status is not FileStatus.DELETED)
    if not exists:
        out.add(f.path, side, None)
        return
    if side == "old" and not info.base_sha:
        out.fail(f.path, "the PR's base commit is not known")
        return
    if blob is None or blob.text is None:
        problem = blob.problem if blob is not None else None
        out.fail(f.path, problem or "not read", warn=problem in (None, "not found"))
        return
    if side == "old" and not agrees_with_diff(f, "old", blob.text):
        out.fail(f.path, "the base branch moved past the diff's old side")
        return
    out.add(f.path, side, blob.text)


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8000]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_regular_file(root: Path, path: str, cap: int) -> tuple[bytes | None, str | None]:
    """A file's bytes, or why not. Only regular files inside ``root``: a symlink or a ``..`` in
    a diff's path cannot make depthgate read outside the checkout. ``(None, None)``: absent."""
    target = root / path
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):
        return None, None
    if not resolved.is_relative_to(root.resolve()) or target.is_symlink() or not resolved.is_file():
        return None, "not a regular file of the checkout"
    try:
        if resolved.stat().st_size > cap:
            return None, f"file over {describe_size(cap)}"
        with resolved.open("rb") as fh:
            return fh.read(cap + 1), None
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
