"""The ports the core owns, with their data and error types; adapters implement them.

* :class:`Gateway` -- one chat call to a route alias (``depthgate.gateway.client.HttpGateway``, and
  the test fakes), answering :class:`ChatReply` or raising :class:`GatewayError`.
* :class:`BlobReader` -- the source port: many files read in as few requests as the backend
  allows (``depthgate.github.client.PullRequestClient``; a local git repository at the edge).
* :class:`TaskProgress` -- what the review reports about each task while it runs.
* the pull-request port's types -- :class:`PullRequestInfo`, :class:`ExistingComment`, and
  :class:`GitHubFailure` with its :class:`GitHubErrorClass` (``depthgate.github.client``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from depthgate.core.errors import EXIT_GATEWAY, EXIT_GITHUB, DepthgateError
from depthgate.core.models import ErrorClass, Message
from depthgate.core.source import Blob, BlobRequest


class GatewayError(DepthgateError):
    """A gateway call that did not produce a usable answer."""

    exit_code = EXIT_GATEWAY

    def __init__(
        self,
        message: str,
        *,
        alias: str,
        error_class: ErrorClass,
        http_status: int | None = None,
        request_id: str | None = None,
        retries: int = 0,
        retry_after_s: float | None = None,
        response_model: str | None = None,
        error_body_parsed: bool = False,
    ) -> None:
        super().__init__(message)
        self.alias = alias
        self.error_class = error_class
        self.http_status = http_status
        self.request_id = request_id
        self.retries = retries
        self.retry_after_s = retry_after_s
        self.response_model = response_model
        self.error_body_parsed = error_body_parsed  # the answer was JSON with an error object

    def with_retries(self, retries: int) -> GatewayError:
        self.retries = retries
        return self


@dataclass(frozen=True)
class TaskProgress:
    """What the review tells a progress port (``ReviewOptions.progress``) about one gateway
    task: once when it is sent, once when it ends. The surfaces print it (stderr in a terminal,
    a log group in Actions, INFO in the App); the core only calls it."""

    task_id: str
    alias: str
    tier: str
    hunks: int
    status: str  # sent | reviewed | failed | not_sent
    error_class: str | None = None  # failed / not_sent: the gateway client's class
    latency_ms: float | None = None  # the gateway's answer time, when there was an answer
    calls: int = 0  # gateway calls made for it (retries, a repair turn, fallbacks)
    findings: int | None = None  # reviewed: findings made (inline or for the summary)
    served_by: str | None = None  # the alias that answered (a declared fallback, if not alias)


@dataclass(frozen=True)
class ChatReply:
    alias: str  # the route that was asked
    served_by: str  # the route that answered: differs when a declared fallback served
    content: str
    finish_reason: str | None
    response_model: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: float
    request_id: str | None
    retries: int
    gateway_fallback: bool  # the gateway reported that one of its own fallbacks served
    warnings: tuple[str, ...] = ()
    calls: int = 1  # HTTP requests made, retries and fallbacks included


class Gateway(Protocol):
    """The port the pipeline talks to. :class:`HttpGateway` and the test fakes implement it."""

    async def chat(
        self,
        alias: str,
        messages: Sequence[Message],
        *,
        response_schema: dict[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatReply: ...


class GitHubErrorClass(StrEnum):
    AUTH = "auth"  # 401: the token is wrong or expired
    FORBIDDEN = "forbidden"  # 403 without a rate limit: the token may not do this
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UNPROCESSABLE = "unprocessable"  # 422
    SERVER = "server"
    CONNECTION = "connection"


NEXT_STEP = {
    GitHubErrorClass.AUTH: (
        "GitHub rejected the token (401). In Actions pass `github-token` (default "
        "github.token); for --pr set GITHUB_TOKEN to a token with access to the repository."
    ),
    GitHubErrorClass.FORBIDDEN: (
        "The token may not do this (403). The workflow needs `permissions: pull-requests: "
        "write` (and `contents: read`); fork pull requests get a read-only token on "
        "`pull_request` -- review them with the depthgate GitHub App."
    ),
    GitHubErrorClass.NOT_FOUND: (
        "GitHub answered 404: check the repository and PR number, and that the token can see "
        "the repository (GITHUB_API_URL for GitHub Enterprise Server)."
    ),
    GitHubErrorClass.RATE_LIMITED: (
        "GitHub's rate limit did not clear within the wait depthgate allows. Re-run the job later."
    ),
    GitHubErrorClass.UNPROCESSABLE: (
        "GitHub refused the request as invalid (422). Re-run the job; if it repeats, report it "
        "with the request id."
    ),
    GitHubErrorClass.SERVER: "GitHub failed (5xx). Re-run the job later.",
    GitHubErrorClass.CONNECTION: (
        "GitHub could not be reached. Check GITHUB_API_URL and the runner's network."
    ),
}


class GitHubFailure(DepthgateError):
    """GitHub could not be read or written: exit 4, with a handoff note."""

    exit_code = EXIT_GITHUB

    def __init__(
        self,
        message: str,
        *,
        step: str,
        error_class: GitHubErrorClass,
        http_status: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        errors: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.step = step
        self.error_class = error_class
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        self.errors = errors

    @property
    def next_action(self) -> str:
        return NEXT_STEP[self.error_class]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "error_class": self.error_class.value,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "message": self.message,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class PullRequestInfo:
    """The fields of ``GET /pulls/{n}`` a review uses."""

    number: int
    head_sha: str
    state: str
    title: str
    body: str
    base_sha: str = ""  # the base branch's commit: where the old side of each file is read


@dataclass(frozen=True)
class ExistingComment:
    id: int
    body: str
    author: str


class BlobReader(Protocol):
    """The source port. Answers every request's ``key``; a file that could not be read is a
    :class:`Blob` with ``text=None`` and the reason, never an exception (a failure of the whole
    read raises the adapter's failure, e.g. :class:`GitHubFailure`)."""

    def read_blobs(
        self, requests: Sequence[BlobRequest], *, max_bytes: int
    ) -> Mapping[str, Blob]: ...
