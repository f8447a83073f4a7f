"""Typed values shared by the review stages: what the model may say, and what may be posted.

The finding schema is the whole of the model's power: a path, a line range, a side, a severity,
a category, a title, a body and an optional suggestion. Nothing in it can choose the review
event, add labels, merge, or reach any API other than a review comment (threats.md T1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
Category = Literal[
    "bug", "security", "performance", "reliability", "maintainability", "style", "docs", "test"
]

Message = dict[str, str]  # one chat message: {"role": ..., "content": ...}

MAX_TITLE = 200
MAX_BODY = 8000
MAX_SUGGESTION = 8000


class Finding(BaseModel):
    """One finding as the model reports it. Validated strictly: ``"12"`` is not a line number."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    path: str = Field(min_length=1, max_length=1000)
    line: int
    side: Literal["RIGHT", "LEFT"] = "RIGHT"
    start_line: int | None = None
    severity: Severity
    category: Category
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    body: str = Field(min_length=1, max_length=MAX_BODY)
    suggestion: str | None = Field(default=None, max_length=MAX_SUGGESTION)


class ErrorClass(StrEnum):
    """The gateway client's failure taxonomy (design §4), used everywhere."""

    AUTH = "auth"
    UNKNOWN_ALIAS = "unknown_alias"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    BAD_RESPONSE = "bad_response"
    CONTEXT_LENGTH = "context_length"
    BAD_REQUEST = "bad_request"
    MODEL_MISMATCH = "model_mismatch"


RETRYABLE = frozenset(
    {ErrorClass.RATE_LIMITED, ErrorClass.SERVER, ErrorClass.TIMEOUT, ErrorClass.CONNECTION}
)
NO_FALLBACK = frozenset({ErrorClass.AUTH, ErrorClass.UNKNOWN_ALIAS})


@dataclass(frozen=True, slots=True)
class Provenance:
    tier: str
    alias: str
    model: str | None  # the resolved model as the gateway reported it


@dataclass(frozen=True, slots=True)
class Comment:
    """An inline review comment that is provably on the diff (placement checked it)."""

    path: str
    line: int
    side: str  # RIGHT | LEFT
    start_line: int | None
    start_side: str | None
    body: str  # sanitized, with provenance and the hidden fingerprint
    severity: str
    category: str
    provenance: Provenance
    fingerprint: str
    title: str = ""  # the finding's title, sanitized: what the summary lists if it is demoted


@dataclass(frozen=True, slots=True)
class SummaryOnly:
    """A finding that cannot be posted inline, and why; it is listed in the summary instead."""

    finding: Finding
    reason: str
    provenance: Provenance
