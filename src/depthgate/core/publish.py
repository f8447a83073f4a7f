"""The one review request a run sends to GitHub, built from an outcome (design §6). Pure.

``POST /repos/{o}/{r}/pulls/{n}/reviews`` with ``event: "COMMENT"`` -- a constant here, so
nothing the model says can choose the event (threats.md T1) -- ``commit_id`` pinned to the
reviewed head, and the inline comments in GitHub's shape (``start_line`` only for a real range,
since ``start_line == line`` is a 422). Comments whose fingerprint is already on the PR are not
sent again. Issue #4's GitHub adapter posts this payload; this module only builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from depthgate.core.models import Comment

EVENT: Final = "COMMENT"
MAX_BODY = 65_536


@dataclass(frozen=True)
class ReviewPayload:
    """The review request, typed from the outcome to the adapter; :meth:`to_json` is GitHub's
    shape, built only where it is sent or shown."""

    commit_id: str
    body: str
    comments: tuple[Comment, ...]  # the ones to send: none already on the PR
    duplicates: int  # comments not sent: their fingerprint is already on the PR

    def to_json(self) -> dict[str, Any]:
        return {
            "commit_id": self.commit_id,
            "event": EVENT,
            "body": self.body,
            "comments": [comment_json(c) for c in self.comments],
        }


def comment_json(c: Comment) -> dict[str, Any]:
    out: dict[str, Any] = {"path": c.path, "body": c.body, "line": c.line, "side": c.side}
    if c.start_line is not None and c.start_line < c.line:
        out["start_line"] = c.start_line
        out["start_side"] = c.start_side or c.side
    return out


def review_payload(
    comments: Sequence[Comment],
    *,
    head_sha: str,
    body: str,
    existing_fingerprints: frozenset[str] = frozenset(),
) -> ReviewPayload:
    """The one place comments already on the PR (by fingerprint) are left out."""
    fresh = tuple(c for c in comments if c.fingerprint not in existing_fingerprints)
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 40] + "\n\n… (truncated by depthgate)"
    return ReviewPayload(
        commit_id=head_sha, body=body, comments=fresh, duplicates=len(comments) - len(fresh)
    )
