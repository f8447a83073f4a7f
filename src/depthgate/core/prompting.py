"""What every task sends besides its code: the instructions, the answer's schema, the PR's words.

Package data (``prompts/*.md``) and the strict JSON Schema of the answer, with their token cost,
so the packer can count every token a task sends (design §9) -- not only the hunks. The PR
description is the author's text of any length: it is cut to ``limits.pr_body_tokens`` and sent
to the logic and deep tiers only (a fast review of a typo does not need the PR's story).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

BYTES_PER_TOKEN = 2.5  # the packer's estimate (see depthgate.core.pack)
# The words around the data in the user message: the fence with its nonce, the section titles
# and the closing line (measured: under 90 tokens by the estimate; rounded up).
FRAMING_TOKENS = 120


# Hashes, base64 and other high-entropy runs tokenize at 1.5-1.8 bytes a token (o200k), not 2.5:
# a lock file's hashes made a task 1.75x its estimate. Such runs are charged at DENSE_BYTES.
DENSE_BYTES = 1.4
_DENSE = re.compile(r"[A-Za-z0-9+/=_-]{24,}")


def dense_extra(text: str) -> float:
    """Tokens to add to ``bytes / BYTES_PER_TOKEN`` for the high-entropy runs in ``text``
    (a run counts when it holds at least 4 digits: identifiers rarely do, hashes always)."""
    extra = 0
    for m in _DENSE.finditer(text):
        run = m.group()
        if sum(ch.isdigit() for ch in run) >= 4:
            extra += len(run)
    return extra * (1 / DENSE_BYTES - 1 / BYTES_PER_TOKEN)


def estimate(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "replace")) / BYTES_PER_TOKEN + dense_extra(text))


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


def cap_text(text: str, tokens: int) -> tuple[str, bool]:
    """``text`` cut to at most ``tokens`` estimated tokens at a line (or character) boundary;
    True when it was cut."""
    limit = int(tokens * BYTES_PER_TOKEN)
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text, False
    head = data[:limit].decode("utf-8", "ignore")
    cut = head.rfind("\n")
    if cut > limit // 2:
        head = head[:cut]
    return head, True


def shown_pr_text(pr: PullRequestText | None, *, tier: str, body_tokens: int) -> str:
    """The PR section exactly as a task of ``tier`` shows it ("" for fast, or without a PR)."""
    if pr is None or tier == "fast" or not (pr.title or pr.body):
        return ""
    title, _ = cap_text(" ".join(pr.title.split()), 200)
    body, cut = cap_text(pr.body, body_tokens)
    note = f" (cut to about {body_tokens:,} tokens)" if cut else ""
    return f"PR title: {title}\nPR description{note}:\n{body}\n"


def system_prompt(tier: str, *, escalate: bool) -> str:
    system = prompt_text("system") + "\n" + prompt_text(tier)
    if escalate:
        system += "\n" + prompt_text("escalate")
    return system


@cache
def fixed_tokens(tier: str, *, escalate: bool) -> int:
    """What a task of ``tier`` sends before any data: system prompt, schema and framing."""
    schema = json.dumps(response_schema(escalate=escalate), separators=(",", ":"))
    return estimate(system_prompt(tier, escalate=escalate)) + estimate(schema) + FRAMING_TOKENS
