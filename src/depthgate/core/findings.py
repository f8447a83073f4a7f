"""Prompts for a task and the model's answer back into findings.

The prompt texts are package data (``prompts/*.md``), not strings in code. The PR's title, body
and diff go into one clearly delimited untrusted-data section whose fence carries a nonce derived
from the content, so the content cannot close the fence early (a mitigation, not a guarantee:
the structural controls are that the model has no tools and its output is data).

The answer is parsed strictly: one JSON object (a ```json fence around it is tolerated), with a
``findings`` list; each finding is validated on its own, so one bad finding does not sink the
others -- it goes to the summary with the reason. Unknown fields (``event``, ``labels``) are
ignored and reported. Pure: text in, values out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from depthgate.core import jsonbound
from depthgate.core.context import render_blocks
from depthgate.core.hunktext import render_hunk
from depthgate.core.models import Finding, Message
from depthgate.core.pack import Task
from depthgate.core.prompting import (
    PullRequestText,
    prompt_text,
    response_schema,
    shown_pr_text,
    system_prompt,
)

__all__ = [
    "PullRequestText",
    "build_messages",
    "parse_answer",
    "prompt_text",
    "repair_messages",
    "response_schema",
]

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)
_KNOWN = set(Finding.model_fields)
DEFAULT_BODY_TOKENS = 2000  # limits.pr_body_tokens' default, for tasks packed without the PR
MAX_ESCALATIONS = 20  # per answer


def build_messages(
    task: Task, pr: PullRequestText | None = None, *, escalate: bool = False
) -> list[Message]:
    """The task's two messages. The PR section is the one the packer counted (``task.pr_text``);
    a ``pr`` given here is shown only when the plan was built without it, cut the same way."""
    system = system_prompt(task.tier.value, escalate=escalate)
    pr_text = task.pr_text or shown_pr_text(
        pr, tier=task.tier.value, body_tokens=DEFAULT_BODY_TOKENS
    )
    parts: list[str] = []
    if pr_text:
        parts.append(pr_text)
    if task.guidance_text:
        parts.append(task.guidance_text)
    parts.append(
        "Hunks under review (R<n> = line n of the new file, L<n> = line n of the old file; "
        "only these lines can carry a finding):\n"
    )
    parts.extend(render_hunk(th.hunk, th.site) for th in task.hunks)
    code = render_blocks(task.blocks, [th.hunk for th in task.hunks])
    if code or task.context:
        parts.append(
            "\nContext only (do not report on these lines; C<n> = line n of the file, "
            "new side unless marked old):\n"
        )
    if code:
        parts.append(code)
    if task.cut:
        parts.append("Left out of this context: " + "; ".join(task.cut) + "\n")
    if task.context:
        parts.append("Other hunks of this PR:\n")
        parts.extend(render_hunk(h) for h in task.context)
    data = "\n".join(parts)
    nonce = hashlib.sha256(data.encode("utf-8", "replace")).hexdigest()[:16]
    user = (
        f"Review the hunks below.\n\n<<<UNTRUSTED-DATA {nonce}>>>\n{data}\n"
        f"<<<END UNTRUSTED-DATA {nonce}>>>\n\nAnswer with the JSON object only."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def repair_messages(previous: Sequence[Message], answer: str, error: str) -> list[Message]:
    """One repair turn: the model sees its unusable answer and why it was unusable."""
    note = prompt_text("repair").replace("{error}", error)
    return [
        *previous,
        {"role": "assistant", "content": answer[:20_000]},
        {"role": "user", "content": note},
    ]


class AnswerError(ValueError):
    """The answer is not one JSON object with a ``findings`` list."""


@dataclass(frozen=True)
class EscalationRequest:
    """A hunk the answer flags for the deep alias: any of its lines, and why."""

    path: str
    line: int
    reason: str


@dataclass(frozen=True)
class ParsedAnswer:
    findings: tuple[Finding, ...]
    invalid: tuple[tuple[Any, str], ...] = ()  # (raw item, why it was rejected)
    ignored_fields: frozenset[str] = field(default_factory=frozenset)
    escalations: tuple[EscalationRequest, ...] = ()


def parse_answer(text: str) -> ParsedAnswer:
    data = _load_json(text)
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise AnswerError('expected a JSON object {"findings": [...]}')
    ignored = {str(k) for k in data if k not in ("findings", "escalate")}
    findings: list[Finding] = []
    invalid: list[tuple[Any, str]] = []
    for item in data["findings"]:
        if not isinstance(item, dict):
            invalid.append((item, "not an object"))
            continue
        ignored |= {str(k) for k in item if k not in _KNOWN}
        try:
            findings.append(Finding.model_validate(item))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            invalid.append((item, f"invalid_finding: {where}: {first['msg']}"))
    escalations = tuple(_escalations(data.get("escalate")))
    return ParsedAnswer(tuple(findings), tuple(invalid), frozenset(ignored), escalations)


def _escalations(raw: object) -> list[EscalationRequest]:
    """Well-formed items only: an escalation is a request, and a malformed one is dropped."""
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw[:MAX_ESCALATIONS]:
        if not isinstance(item, dict):
            continue
        path, line, reason = item.get("path"), item.get("line"), item.get("reason")
        if isinstance(path, str) and type(line) is int and isinstance(reason, str):
            out.append(EscalationRequest(path, line, " ".join(reason.split())[:300]))
    return out


def _load_json(text: str) -> Any:
    stripped = text.strip()
    m = _FENCE.match(stripped)
    if m:
        stripped = m.group("body").strip()
    try:
        return jsonbound.loads(stripped)
    except jsonbound.JsonTooDeep as exc:
        raise AnswerError(f"not a findings object: the JSON is {exc}") from None
    except json.JSONDecodeError as exc:
        raise AnswerError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
