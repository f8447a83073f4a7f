"""What a delivery becomes: a job spec with its key, and the records the job store keeps.

The job key is (installation, repository, PR, head SHA); the config hash completes it once a
worker has read the repository's config (a job whose key and config hash were already reviewed
is not reviewed again). ``pr_key`` groups the jobs of one pull request, so that a newer head
supersedes an older one. Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from depthgate.github.actions import REVIEWED_ACTIONS


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"


ACTIVE = (JobState.QUEUED, JobState.RUNNING)


class Accepted(StrEnum):
    """What the webhook did with a verified delivery (the ``outcome`` of its 202)."""

    QUEUED = "queued"  # a new job was queued
    COLLAPSED = "collapsed"  # the same job is already queued or running: nothing added
    DUPLICATE = "duplicate"  # this delivery id was seen before: nothing added
    REQUEUED = "requeued"  # a redelivery of a delivery whose job had failed: queued again


@dataclass(frozen=True)
class JobSpec:
    """The job a delivery asks for. Stored with the job; the worker rebuilds its context from it."""

    key: str
    pr_key: str | None
    event: str  # "pull_request.opened"
    delivery_id: str
    installation_id: int
    repository: str  # owner/name
    repository_id: int | None
    default_branch: str
    pr_number: int | None
    head_sha: str | None
    updated_at: str  # the PR's updated_at: orders deliveries of one PR that arrive out of order

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> JobSpec:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Claim:
    """A job a worker now holds: it runs it and reports with ``token``."""

    spec: JobSpec
    payload: bytes
    attempt: int
    token: str
    reviewed_config_hash: str | None  # the config hash of the last completed run of this key


@dataclass(frozen=True)
class Skip:
    """Why a message led to no run (a duplicate message, a job already done, a newer head)."""

    reason: str


@dataclass(frozen=True)
class JobRecord:
    key: str
    state: JobState
    attempts: int
    conclusion: str | None
    error: str | None
    reviewed_config_hash: str | None


class Ignored(Exception):
    """The delivery is authentic but asks for nothing (its 202 says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def job_spec(event: str, delivery_id: str, payload: Any) -> JobSpec:
    """The job for a verified, allowlisted delivery, or :class:`Ignored` with the reason."""
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object")
    action = payload.get("action")
    name = f"{event}.{action}" if isinstance(action, str) else event
    installation = payload.get("installation")
    if not isinstance(installation, dict) or not isinstance(installation.get("id"), int):
        raise Ignored(
            "no installation in the payload: deliveries must come from the GitHub App's webhook "
            "(a repository or organisation webhook cannot be answered with an App token)"
        )
    repo = payload.get("repository")
    if not isinstance(repo, dict) or not isinstance(repo.get("full_name"), str):
        raise Ignored(f"{name}: no repository in the payload")
    repo_id = repo.get("id") if isinstance(repo.get("id"), int) else None
    repo_ref = f"r{repo_id}" if repo_id is not None else f"n{repo['full_name'].lower()}"
    base = f"i{installation['id']}:{repo_ref}"
    default_branch = str(repo.get("default_branch") or "")
    # An event about no pull request: one job per delivery.
    spec = JobSpec(
        key=f"{base}:d{delivery_id}",
        pr_key=None,
        event=name,
        delivery_id=delivery_id,
        installation_id=installation["id"],
        repository=repo["full_name"],
        repository_id=repo_id,
        default_branch=default_branch,
        pr_number=None,
        head_sha=None,
        updated_at="",
    )
    rerun = _rerequested(name, payload, base, spec)
    if rerun is not None:
        return rerun
    if name == COMMAND_EVENT:
        return _command(payload, base, spec)
    if name == REPLY_EVENT:
        return _reply(payload, base, spec)
    pr = payload.get("pull_request")
    if isinstance(pr, dict):
        number, head = pr.get("number"), (pr.get("head") or {}).get("sha")
        if not isinstance(number, int) or not isinstance(head, str) or not head:
            raise ValueError("pull_request without a number and head.sha")
        if pr.get("state") not in (None, "open") and action in REVIEWED_ACTIONS:
            raise Ignored(f"PR #{number} is {pr.get('state')}")
        if pr.get("draft") is True and action in REVIEWED_ACTIONS:
            raise Ignored(f"PR #{number} is a draft; it is reviewed when marked ready for review")
        pr_key = f"{base}:pr{number}"
        return replace(
            spec,
            key=f"{pr_key}:{head}",
            pr_key=pr_key,
            pr_number=number,
            head_sha=head,
            updated_at=str(pr.get("updated_at") or ""),
        )
    return spec


RERUN_EVENTS = ("check_run.rerequested", "check_suite.rerequested")


def _rerequested(name: str, payload: dict[str, Any], base: str, spec: JobSpec) -> JobSpec | None:
    """Re-run, pressed on depthgate's check (run or suite): a job of its own for that head, one
    per press (so no earlier job of the head collapses it), that never moves the PR's head."""
    if name not in RERUN_EVENTS:
        return None
    check = payload.get(name.split(".", 1)[0])
    if not isinstance(check, dict):
        raise ValueError(f"{name} without its {name.split('.', 1)[0]} object")
    head = check.get("head_sha")
    prs = [p for p in check.get("pull_requests") or [] if isinstance(p, dict)]
    if not isinstance(head, str) or not head:
        raise ValueError(f"{name} without a head_sha")
    if not prs or not isinstance(prs[0].get("number"), int):
        raise Ignored(f"{name}: the check is on no open pull request of this repository")
    number = prs[0]["number"]
    pr_key = f"{base}:pr{number}"
    return replace(
        spec,
        key=f"{pr_key}:{head}:rerun:{spec.delivery_id}",
        pr_key=pr_key,
        pr_number=number,
        head_sha=head,
        updated_at="",  # never newer than the PR's own deliveries: a re-run moves no head
    )


COMMAND_EVENT = "issue_comment.created"


def _command(payload: dict[str, Any], base: str, spec: JobSpec) -> JobSpec:
    """A comment on a pull request (a possible ``/depthgate`` command): a job per comment. An
    edited comment is another event (``issue_comment.edited``), never subscribed: a command runs
    once, when it is written."""
    issue, comment = payload.get("issue"), payload.get("comment")
    if not isinstance(issue, dict) or not isinstance(comment, dict):
        raise ValueError("issue_comment without its issue and comment")
    if not isinstance(issue.get("pull_request"), dict):
        raise Ignored("a comment on an issue, not on a pull request")
    number, comment_id = issue.get("number"), comment.get("id")
    if not isinstance(number, int) or not isinstance(comment_id, int):
        raise ValueError("issue_comment without the issue's number and the comment's id")
    return replace(spec, key=f"{base}:pr{number}:comment{comment_id}", pr_number=number)


REPLY_EVENT = "pull_request_review_comment.created"


def _reply(payload: dict[str, Any], base: str, spec: JobSpec) -> JobSpec:
    """A review comment that answers a thread (perhaps one of depthgate's): a job per comment,
    apart from the PR's review jobs (it moves no head and supersedes nothing)."""
    comment, pr = payload.get("comment"), payload.get("pull_request")
    if not isinstance(comment, dict) or not isinstance(pr, dict):
        raise ValueError("pull_request_review_comment without its comment and pull_request")
    if not isinstance(comment.get("in_reply_to_id"), int):
        raise Ignored("a new review comment, not a reply in a thread")
    number, comment_id = pr.get("number"), comment.get("id")
    if not isinstance(number, int) or not isinstance(comment_id, int):
        raise ValueError("pull_request_review_comment without the PR's number and the comment id")
    head = (pr.get("head") or {}).get("sha")
    return replace(
        spec,
        key=f"{base}:pr{number}:reply{comment_id}",
        pr_number=number,
        head_sha=head if isinstance(head, str) else None,
    )
