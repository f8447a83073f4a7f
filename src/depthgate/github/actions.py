"""The GitHub Actions runtime: the event, the decision it leads to, and the workflow commands.

``depthgate review`` inside Actions will read its event through here (issue #4 wires it to the
GitHub adapter; this module is its first part). The reader of ``GITHUB_EVENT_PATH`` is separate
from the parser, and the event model holds only the fields depthgate reads. Workflow commands
follow GitHub's escaping rules (``%``, CR and LF in messages; also ``:`` and ``,`` in
properties), outputs use the heredoc form with a random delimiter, and the job summary is capped
at GitHub's 1 MiB per step. Only :func:`read_event` and the two file writers touch the outside.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from depthgate.core.commands import parse_command
from depthgate.core.errors import InputError
from depthgate.core.guidance import PullRequestFacts
from depthgate.core.markdown import Escape

# Environment variables whose values must never appear in output, wherever they come from.
SECRET_ENV = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "DEPTHGATE_GITHUB_TOKEN",
    "DEPTHGATE_WEBHOOK_SECRET",
    "DEPTHGATE_WEBHOOK_SECRET_PREVIOUS",
    "DEPTHGATE_PRIVATE_KEY",
)
REVIEWED_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})
SUMMARY_LIMIT = 1024 * 1024  # bytes per step (docs/platform.md, GitHub)


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RepoRef(_Read):
    full_name: str
    fork: bool = False


class Branch(_Read):
    sha: str
    ref: str
    repo: RepoRef | None = None  # null when the fork was deleted


class User(_Read):
    login: str = ""


class Label(_Read):
    name: str = ""


class PullRequest(_Read):
    number: int
    state: str
    draft: bool = False
    title: str = ""
    body: str | None = None
    head: Branch
    base: Branch
    user: User | None = None
    labels: tuple[Label, ...] = ()

    def facts(self) -> PullRequestFacts:
        """What the skip rules look at (review.skip)."""
        author = self.user.login if self.user else ""
        return PullRequestFacts(author, tuple(lb.name for lb in self.labels), self.title)


class IssueRef(_Read):
    """``issue`` of an ``issue_comment`` event: a pull request when ``pull_request`` is set."""

    number: int
    state: str = "open"
    pull_request: dict[str, Any] | None = None


class CommentRef(_Read):
    """``comment`` of an ``issue_comment`` / ``pull_request_review_comment`` event."""

    id: int
    body: str | None = None
    in_reply_to_id: int | None = None


class Event(_Read):
    """The fields of an Actions event payload that depthgate reads; ``comment`` is kept whole
    too (``raw_comment``) for :mod:`depthgate.cli.talk`, which reads the author's fields."""

    action: str | None = None
    pull_request: PullRequest | None = None
    repository: RepoRef | None = None
    issue: IssueRef | None = None
    comment: CommentRef | None = None
    raw_comment: dict[str, Any] = {}


class Kind(StrEnum):
    REVIEW = "review"
    SMOKE = "smoke"
    SKIP = "skip"
    COMMAND = "command"  # a /depthgate command in a PR comment (issue_comment)
    REPLY = "reply"  # a reply in a review thread (pull_request_review_comment)


@dataclass(frozen=True)
class Decision:
    kind: Kind
    reason: str
    fork: bool = False  # head and base in different repositories: no secrets on pull_request


def read_event(path: str | None) -> Event:
    """Read and parse ``GITHUB_EVENT_PATH``; a clear error when it is missing or not an event."""
    if not path:
        raise InputError(
            "GITHUB_EVENT_PATH is not set: run inside GitHub Actions, or set it to an event "
            "payload file"
        )
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"GITHUB_EVENT_PATH={path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"GITHUB_EVENT_PATH={path}: not a JSON event payload ({exc})") from None
    return parse_event(data, path)


def parse_event(data: Any, source: str = "event") -> Event:
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{source}: not a usable event payload: {where}: {first['msg']}") from None
    comment = data.get("comment") if isinstance(data, dict) else None
    return event.model_copy(update={"raw_comment": comment}) if isinstance(comment, dict) else event


def decide(event_name: str, event: Event) -> Decision:
    """What a run does for this event: review the PR, run the smoke test, or skip (and why)."""
    if event_name == "workflow_dispatch":
        return Decision(Kind.SMOKE, "workflow_dispatch runs the gateway smoke test")
    if event_name == "issue_comment":
        return _decide_comment(event)
    if event_name == "pull_request_review_comment":
        return _decide_reply(event)
    if event_name not in ("pull_request", "pull_request_target"):
        return Decision(
            Kind.SKIP,
            f"event {event_name!r} is not handled (pull_request reviews; issue_comment runs "
            "commands; pull_request_review_comment answers replies)",
        )
    pr = event.pull_request
    if pr is None:
        return Decision(Kind.SKIP, f"{event_name} event without a pull_request object")
    if event.action not in REVIEWED_ACTIONS:
        return Decision(Kind.SKIP, f"pull_request action {event.action!r} is not reviewed")
    if pr.state != "open":
        return Decision(Kind.SKIP, f"PR #{pr.number} is {pr.state}")
    if pr.draft:
        return Decision(
            Kind.SKIP, f"PR #{pr.number} is a draft; it is reviewed when marked ready for review"
        )
    head_repo = pr.head.repo.full_name if pr.head.repo else None
    base_repo = pr.base.repo.full_name if pr.base.repo else None
    if head_repo != base_repo:
        return Decision(
            Kind.REVIEW, f"PR #{pr.number} from fork {head_repo or '(deleted)'}", fork=True
        )
    return Decision(Kind.REVIEW, f"PR #{pr.number} ({event.action})")


def _decide_comment(event: Event) -> Decision:
    issue, comment = event.issue, event.comment
    if event.action != "created":
        return Decision(
            Kind.SKIP, f"issue_comment action {event.action!r}: a command runs once, when created"
        )
    if issue is None or comment is None:
        return Decision(Kind.SKIP, "issue_comment event without an issue and a comment")
    if issue.pull_request is None:
        return Decision(Kind.SKIP, f"#{issue.number} is an issue, not a pull request")
    if parse_command(comment.body) is None:
        return Decision(Kind.SKIP, f"comment {comment.id} is not a /depthgate command")
    if issue.state != "open":
        return Decision(Kind.SKIP, f"PR #{issue.number} is {issue.state}")
    return Decision(Kind.COMMAND, f"a command in comment {comment.id} on PR #{issue.number}")


def _decide_reply(event: Event) -> Decision:
    pr, comment = event.pull_request, event.comment
    if event.action != "created":
        return Decision(Kind.SKIP, f"pull_request_review_comment action {event.action!r}")
    if pr is None or comment is None:
        return Decision(Kind.SKIP, "pull_request_review_comment event without a PR and a comment")
    if comment.in_reply_to_id is None:
        return Decision(Kind.SKIP, f"review comment {comment.id} is not a reply in a thread")
    head_repo = pr.head.repo.full_name if pr.head.repo else None
    base_repo = pr.base.repo.full_name if pr.base.repo else None
    return Decision(
        Kind.REPLY,
        f"a reply in a review thread of PR #{pr.number}",
        fork=head_repo != base_repo,
    )


# --------------------------------------------------------------------------------------------
# Workflow commands


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: str | int | None) -> str:
    """One workflow command line, e.g. ``::error file=a.py,line=3,title=x::message``."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    title: str | None = None,
) -> str:
    if level not in ("error", "warning", "notice"):
        raise ValueError(f"annotation level must be error, warning or notice, not {level!r}")
    # shapes are redacted here whatever the caller did; exact values are the caller's (and
    # ::add-mask::'s, which is why add_mask itself must not redact)
    return command(level, Escape().plain(message), file=file, line=line, title=title)


def add_mask(value: str) -> str:
    """``::add-mask::`` for a secret, before anything could print it."""
    return command("add-mask", value)


@contextmanager
def group(out: TextIO, title: str) -> Iterator[None]:
    out.write(command("group", title) + "\n")
    try:
        yield
    finally:
        out.write("::endgroup::\n")


@contextmanager
def no_commands(out: TextIO) -> Iterator[None]:
    """Nothing written inside is read as a workflow command: for text that carries PR or model
    words (a file name or an escalation reason with a line ``::error::...`` in it)."""
    token = f"depthgate-{secrets.token_hex(8)}"
    out.write(command("stop-commands", token) + "\n")
    try:
        yield
    finally:
        out.write(f"::{token}::\n")


def format_outputs(values: Mapping[str, str | int], delimiter: str | None = None) -> str:
    """``name<<DELIM`` blocks for ``$GITHUB_OUTPUT``: safe for multi-line values."""
    delim = delimiter or f"ghadelimiter_{secrets.token_hex(8)}"
    parts = []
    for name, value in values.items():
        text = str(value)
        if delim in text:
            raise ValueError(f"output {name!r} contains the delimiter")
        parts.append(f"{name}<<{delim}\n{text}\n{delim}\n")
    return "".join(parts)


def action_outputs(**values: str | int) -> dict[str, str | int]:
    """Every output action.yml declares, zero or empty unless given (``comments_posted=3``)."""
    out: dict[str, str | int] = {
        "comments-posted": 0,
        "hunks-reviewed": 0,
        "hunks-failed": 0,
        "handoff-path": "",
        "smoke-report-path": "",
    }
    for name, value in values.items():
        key = name.replace("_", "-")
        if key not in out:
            raise ValueError(f"action.yml declares no output {key!r}")
        out[key] = value
    return out


def write_outputs(path: str | None, values: Mapping[str, str | int]) -> None:
    if path:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(format_outputs(values))


def cap_summary(markdown: str, limit: int = SUMMARY_LIMIT) -> str:
    data = markdown.encode("utf-8")
    if len(data) <= limit:
        return markdown
    note = "\n\n… (job summary truncated at GitHub's 1 MiB limit)\n"
    cut = data[: limit - len(note.encode())].decode("utf-8", errors="ignore")
    return cut + note


def append_summary(path: str | None, markdown: str) -> None:
    if path:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(cap_summary(markdown))
