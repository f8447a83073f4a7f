"""The source port over a local git repository: ``depthgate plan|review --diff PATH --repo DIR``.

The new side of each changed file is DIR's work tree; the old side is the blob the diff's
``index`` line names, read from DIR's git objects, else ``--base REV``'s copy of the file. All
object reads go through one ``git cat-file --batch`` process. Content is used only when it is
what the diff was made from: its git blob id matches the ``index`` line (by prefix, as the line
abbreviates it), or, with no id to compare, the lines the diff shows agree with it. Anything
else -- a tampered or moved-on file, a blob not in DIR, a file over a cap, a binary -- leaves
that file to diff-only context, with a warning where it looks like a mistake.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from depthgate.core.diff import Diff, FileDiff, FileKind, FileStatus
from depthgate.core.errors import InputError
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
from depthgate.github.source import read_regular_file

GIT_TIMEOUT_S = 60.0
MISMATCH = "content does not match the diff"


@dataclass(frozen=True, slots=True)
class _Object:
    data: bytes | None  # None: missing, or over the cap (``problem`` says which)
    problem: str | None = None


def repo_sources(diff: Diff, repo: str, *, base: str | None, caps: SourceCaps) -> Sources:
    root = Path(repo)
    if not root.is_dir():
        raise InputError(f"--repo {repo}: not a directory; pass the repository's work tree")
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        raise InputError(f"--repo {repo}: not a git repository (git rev-parse failed)")
    root = Path(top)
    if (
        base is not None
        and _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}") is None
    ):
        raise InputError(f"--base {base}: not a commit in {repo}; pass a branch, tag or commit id")

    files = [f for f in diff.files if f.hunks and f.kind is FileKind.REGULAR and not f.binary]
    names: list[str] = []  # what cat-file is asked for, in order
    for f in files:
        if f.old_path is not None:
            names.append(f.old_blob or (f"{base}:{f.old_path}" if base else ""))
        if f.status is not FileStatus.DELETED:
            names.append(f.new_blob or "")
    objects = _cat_file(root, [n for n in dict.fromkeys(names) if n], caps.file_bytes)

    out = SourceBuilder(SourceMode.REPO, caps)
    for f in files:
        _old_side(out, f, objects, base)
        if f.path not in out.failed:
            _new_side(out, f, root, objects)
    return out.build()


class GitBlobReader:
    """The :class:`~depthgate.core.ports.BlobReader` port over a local repository: files as
    ``REV:PATH`` (or by object id), in one ``git cat-file`` pair for the whole read."""

    def __init__(self, repo: str) -> None:
        self.root = Path(repo)

    def read_blobs(self, requests: Sequence[BlobRequest], *, max_bytes: int) -> dict[str, Blob]:
        names = {r.key: r.oid or f"{r.rev}:{r.path}" for r in requests}
        objects = _cat_file(self.root, list(dict.fromkeys(names.values())), max_bytes)
        out: dict[str, Blob] = {}
        for key, name in names.items():
            obj = objects.get(name, _Object(None, "not found"))
            if obj.data is None:
                out[key] = Blob(None, problem=obj.problem)
                continue
            try:
                out[key] = Blob(obj.data.decode("utf-8"), size=len(obj.data))
            except UnicodeDecodeError:
                out[key] = Blob(None, size=len(obj.data), problem="not UTF-8 text")
        return out


def _old_side(
    out: SourceBuilder, f: FileDiff, objects: dict[str, _Object], base: str | None
) -> None:
    if f.old_path is None:
        out.add(f.path, "old", None)
        return
    if f.old_blob:
        obj = objects.get(f.old_blob, _Object(None, "not found"))
        if obj.data is None:
            # a blob the diff names but DIR does not hold: DIR is not the repository of the diff,
            # or not fetched far enough
            missing = obj.problem == "not found"
            out.fail(
                f.path,
                f"old side {obj.problem} in --repo" if missing else str(obj.problem),
                warn=missing,
            )
            return
        _use(out, f, "old", obj.data, checked=True)
        return
    if base is None:
        out.fail(f.path, "no blob id in the diff and no --base for the old side")
        return
    obj = objects.get(f"{base}:{f.old_path}", _Object(None, "not found"))
    if obj.data is None:
        out.fail(
            f.path, f"old side {obj.problem} at --base {base}", warn=obj.problem == "not found"
        )
        return
    _use(out, f, "old", obj.data, checked=False)


def _new_side(out: SourceBuilder, f: FileDiff, root: Path, objects: dict[str, _Object]) -> None:
    if f.status is FileStatus.DELETED:
        out.add(f.path, "new", None)
        return
    data, problem = _work_tree_file(root, f.path, out.caps.file_bytes)
    if data is not None and (blob_matches(f.new_blob, data) or not f.new_blob):
        _use(out, f, "new", data, checked=bool(f.new_blob))
        return
    # the work tree moved on (or was never there): the diff's own blob may still be in git
    obj = objects.get(f.new_blob or "")
    if obj is not None and obj.data is not None:
        _use(out, f, "new", obj.data, checked=True)
        return
    if data is not None:
        out.fail(f.path, MISMATCH, warn=True)
    else:
        out.fail(f.path, problem or "not found in --repo", warn=problem is None)


def _use(out: SourceBuilder, f: FileDiff, side_: Side, data: bytes, *, checked: bool) -> None:
    if b"\0" in data[:8000]:
        out.fail(f.path, "binary file")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.fail(f.path, "not UTF-8")
        return
    if not checked and not agrees_with_diff(f, side_, text):
        out.fail(f.path, MISMATCH, warn=True)
        return
    out.add(f.path, side_, text)


def _work_tree_file(root: Path, path: str, cap: int) -> tuple[bytes | None, str | None]:
    return read_regular_file(root, path, cap)


def _over(cap: int) -> str:
    return f"file over {describe_size(cap)}"


def _cat_file(root: Path, names: Sequence[str], cap: int) -> dict[str, _Object]:
    """Every object the diff names: one ``git cat-file --batch-check`` for the sizes, then one
    ``--batch`` for the blobs under ``cap`` (so a huge blob is never read into memory)."""
    asked = [n for n in names if "\n" not in n]
    if not asked:
        return {}
    out: dict[str, _Object] = {}
    wanted: dict[str, list[str]] = {}  # full oid -> the names it was asked by
    checks = _run_batch(root, "--batch-check", asked).split(b"\n")
    for name, line in zip(asked, checks, strict=False):
        header = line.split()
        if len(header) != 3:  # "<name> missing" / "<name> ambiguous"
            problem = "ambiguous" if header[-1:] == [b"ambiguous"] else "not found"
            out[name] = _Object(None, problem)
        elif header[1] != b"blob":
            out[name] = _Object(None, "not found")
        elif int(header[2]) > cap:
            out[name] = _Object(None, _over(cap))
        else:
            wanted.setdefault(header[0].decode("ascii"), []).append(name)
    buf, pos = _run_batch(root, "--batch", list(wanted)), 0
    for oid, asked_as in wanted.items():
        end = buf.find(b"\n", pos)
        header = buf[pos:end].split() if end >= 0 else []
        obj = _Object(None, "unreadable")
        if len(header) == 3 and header[0].decode("ascii", "replace") == oid:
            size = int(header[2])
            obj = _Object(buf[end + 1 : end + 1 + size])
            pos = end + 1 + size + 1
        for name in asked_as:
            out[name] = obj
    return out


def _run_batch(root: Path, mode: str, names: Sequence[str]) -> bytes:
    if not names:
        return b""
    request = "".join(f"{n}\n" for n in names).encode("utf-8", "surrogateescape")
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "cat-file", mode],
            input=request,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"--repo {root}: git cat-file failed ({type(exc).__name__})") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace")[:200]
        raise InputError(f"--repo {root}: git cat-file failed: {detail}")
    return proc.stdout


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None
