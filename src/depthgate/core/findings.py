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
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from depthgate.core import jsonbound
from depthgate.core.models import Finding, Message
from depthgate.core.pack import Task, render_hunk

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)
_KNOWN = set(Finding.model_fields)
MAX_ESCALATIONS = 20  # per answer


@cache
def prompt_text(name: str) -> str:
    return resources.files("depthgate").joinpath("prompts", f"{name}.md").read_text("utf-8")


def response_schema(*, escalate: bool = False) -> dict[str, Any]:
    """JSON Schema for ``response_format: json_schema`` (strict mode: every key required).
    ``escalate``: the answer may also flag hunks for the deep alias."""
    finding = {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "path",
            "line",
            "side",
            "start_line",
            "severity",
            "category",
            "title",
            "body",
            "suggestion",
        ],
        "properties": {
            "path": {"type": "string"},
            "line": {"type": "integer"},
            "side": {"type": "string", "enum": ["RIGHT", "LEFT"]},
            "start_line": {"type": ["integer", "null"]},
            "severity": {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
            "category": {
                "type": "string",
                "enum": [
                    "bug",
                    "security",
                    "performance",
                    "reliability",
                    "maintainability",
                    "style",
                    "docs",
                    "test",
                ],
            },
            "title": {"type": "string"},
            "body": {"type": "string"},
            "suggestion": {"type": ["string", "null"]},
        },
    }
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["findings"],
        "properties": {"findings": {"type": "array", "items": finding}},
    }
    if escalate:
        schema["required"].append("escalate")
        schema["properties"]["escalate"] = {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "line", "reason"],
                "properties": {
                    "path": {"type": "string"},
                    "line": {"type": "integer"},
                    "reason": {"type": "string"},
                },
            },
        }
    return schema


@dataclass(frozen=True)
class PullRequestText:
    """The PR's own words: untrusted, shown to the model as data."""

    title: str = ""
    body: str = ""


def build_messages(
    task: Task, pr: PullRequestText | None = None, *, escalate: bool = False
) -> list[Message]:
    system = prompt_text("system") + "\n" + prompt_text(task.tier.value)
    if escalate:
        system += "\n" + prompt_text("escalate")
    parts: list[str] = []
    if pr is not None and (pr.title or pr.body):
        parts.append(f"PR title: {pr.title}\nPR description:\n{pr.body}\n")
    parts.append("Hunks under review:\n")
    parts.extend(render_hunk(th.hunk) for th in task.hunks)
    if task.context:
        parts.append("\nContext only (other hunks of this PR; do not report on these):\n")
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
