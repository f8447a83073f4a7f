"""Answering a reply in one of depthgate's own review threads (design §11).

A person replies to a depthgate comment; depthgate answers once, in the thread, through the
alias of the tier that wrote the comment (kept in the comment's hidden state), with the hunk as
GitHub shows it (``diff_hunk``), any context the surface adds, the comment and the thread so far
-- all as untrusted data. The answer is one short text, posted through the same sanitizer as
every comment. Pure: the surfaces read the thread and post the answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from depthgate.core.diff import Hunk, parse_github_files
from depthgate.core.findings import AnswerError, prompt_text
from depthgate.core.models import Message

REPLY_MARK = "depthgate:reply"
MAX_REPLY_CHARS = 3000
MAX_THREAD_MESSAGES = 20
MAX_MESSAGE_CHARS = 4000
MAX_HUNK_CHARS = 12000
# the hidden state of a depthgate comment: its fingerprint, and since this wave its tier
_STATE = re.compile(
    r"<!-- depthgate:fp=(?P<fp>[0-9a-f]{8,64})(?: tier=(?P<tier>fast|logic|deep))? -->"
)
_REPLY_STATE = re.compile(r"<!-- " + re.escape(REPLY_MARK) + r" to=(?P<to>\d+) -->")


@dataclass(frozen=True, slots=True)
class CommentState:
    fingerprint: str
    tier: str | None  # None on comments written before the tier was recorded


def comment_state(body: str) -> CommentState | None:
    """The hidden state of a comment depthgate wrote, or None for anyone else's."""
    m = _STATE.search(body)
    return CommentState(m["fp"], m["tier"]) if m else None


def reply_marker(root_comment_id: int) -> str:
    return f"<!-- {REPLY_MARK} to={root_comment_id} -->"


def is_reply_by_depthgate(body: str) -> bool:
    return _REPLY_STATE.search(body) is not None


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    author: str
    body: str


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    path: str
    line: int | None
    side: str
    diff_hunk: str  # GitHub's diff_hunk of the root comment: the hunk up to the commented line
    comment: str  # depthgate's comment, without its footer
    thread: tuple[ThreadMessage, ...]  # the replies so far, oldest first, the newest last
    context: str = ""  # code around the hunk, when the surface has it


_HEADER = re.compile(r"^@@ -(?P<old>\d+)(?:,\d+)? \+(?P<new>\d+)(?:,\d+)? @@(?P<section>.*)$")


def hunk_of(path: str, diff_hunk: str) -> Hunk | None:
    """GitHub's ``diff_hunk`` of a review comment as a :class:`Hunk`, or None when it is not one.

    GitHub cuts ``diff_hunk`` at the commented line, so its header's line counts overstate what
    it holds; the counts are taken from the lines themselves."""
    lines = diff_hunk.replace("\r\n", "\n").split("\n")
    m = _HEADER.match(lines[0]) if lines else None
    if m is None:
        return None
    body = [ln for ln in lines[1:] if ln[:1] in (" ", "+", "-")]
    old = sum(1 for ln in body if ln[0] != "+")
    new = sum(1 for ln in body if ln[0] != "-")
    header = f"@@ -{m['old']},{old} +{m['new']},{new} @@{m['section']}"
    patch = "\n".join([header, *body])
    diff = parse_github_files([{"filename": path, "status": "modified", "patch": patch}])
    return next(iter(diff.hunks), None)


def reply_schema() -> dict[str, Any]:
    return {
        "name": "depthgate_reply",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["reply"],
            "properties": {"reply": {"type": "string", "maxLength": MAX_REPLY_CHARS}},
        },
    }


def build_reply_messages(req: ReplyRequest) -> list[Message]:
    thread = req.thread[-MAX_THREAD_MESSAGES:]
    parts = [
        f"File: {req.path}, line {req.line} ({req.side})",
        "The hunk, as GitHub shows it up to the commented line:",
        req.diff_hunk[-MAX_HUNK_CHARS:],
    ]
    if req.context:
        parts += ["Code around it (context):", req.context[:MAX_HUNK_CHARS]]
    parts += ["Your comment:", req.comment[:MAX_MESSAGE_CHARS], "The thread since, oldest first:"]
    parts += [f"--- {m.author}:\n{m.body[:MAX_MESSAGE_CHARS]}" for m in thread]
    data = "\n".join(parts)
    nonce = hashlib.sha256(data.encode("utf-8", "replace")).hexdigest()[:16]
    user = (
        f"Answer the newest reply in this thread.\n\n<<<UNTRUSTED-DATA {nonce}>>>\n{data}\n"
        f"<<<END UNTRUSTED-DATA {nonce}>>>\n\nAnswer with the JSON object only."
    )
    return [{"role": "system", "content": prompt_text("reply")}, {"role": "user", "content": user}]


def parse_reply(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError):
        raise AnswerError('expected a JSON object {"reply": "..."}') from None
    reply = data.get("reply") if isinstance(data, dict) else None
    if not isinstance(reply, str) or not reply.strip():
        raise AnswerError('expected a JSON object {"reply": "..."} with a non-empty reply')
    return reply.strip()[:MAX_REPLY_CHARS]


def within_budget(earlier: Sequence[float], now: float, per_hour: int) -> bool:
    """Whether one more reply fits the per-PR hourly budget, given earlier replies' times."""
    recent = [t for t in earlier if now - 3600 < t <= now]
    return len(recent) < per_hour
