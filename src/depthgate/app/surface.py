"""The Probot-style surface: an :class:`App` that handlers subscribe to, and the
:class:`Context` each handler receives.

Signature verification, queuing, GitHub App authentication and the per-repository config are
done before a handler runs and are invisible to it::

    app = App()

    @app.on("pull_request.opened", "pull_request.synchronize")
    def review(ctx: Context) -> JobResult:
        pr = ctx.github().get_repo(ctx.job.repository).get_pull(ctx.job.pr_number)
        ...
        return JobResult("success", "3 comments")

Handlers may be plain functions or coroutine functions (run to completion on the worker's
thread). A handler is called again when its job is retried (an exception, a worker that died),
so it must find what it already posted (the posting marker) rather than post it twice.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from depthgate.app.settings import AppSettings
from depthgate.core.routes import LoadedConfig
from depthgate.github.actions import REVIEWED_ACTIONS

if TYPE_CHECKING:
    from github import Github

Conclusion = Literal["success", "neutral", "failure"]
_RANK = {"success": 0, "neutral": 1, "failure": 2}

# The events the review is subscribed to by default (the Action's triggers + ready_for_review).
REVIEW_EVENTS = tuple(f"pull_request.{a}" for a in sorted(REVIEWED_ACTIONS))


@dataclass(frozen=True)
class ReviewJob:
    """The job a handler runs: one pull request at one head SHA, under one installation."""

    key: str  # (installation, repository, PR, head SHA)
    event: str  # "pull_request.opened"
    delivery_id: str  # the delivery that queued it (X-GitHub-Delivery)
    installation_id: int
    repository: str  # owner/name
    repository_id: int | None
    default_branch: str
    pr_number: int | None  # None for an event about no pull request
    head_sha: str | None
    attempt: int  # 1 on the first run; a retry or a run after a worker died counts up
    config_hash: str  # sha256 of the gateway-routes.yaml in force (repository's or server's)


@dataclass(frozen=True)
class JobResult:
    """What a handler reports. ``conclusion`` becomes the job's outcome (and, for the review,
    the check run's). A handler that *raises* is retried with backoff; one that returns
    ``failure`` has failed for good and is not retried (it wrote its handoff)."""

    conclusion: Conclusion
    summary: str = ""
    review_id: int | None = None


class JobMetrics:
    """Counters a handler reports into ``/metrics`` (gateway calls, GitHub writes)."""

    def __init__(
        self,
        gateway_call: Callable[[str, str], None] | None = None,
        github_write: Callable[[str], None] | None = None,
    ) -> None:
        self._gateway_call = gateway_call
        self._github_write = github_write

    def gateway_call(self, alias: str, error_class: str = "none") -> None:
        """One call to the gateway: its route alias, and its error class (``none`` if it
        succeeded; otherwise the gateway client's taxonomy: auth, rate_limited, ...)."""
        if self._gateway_call:
            self._gateway_call(alias, error_class)

    def github_write(self, kind: str) -> None:
        """One content-creating GitHub request: ``review``, ``summary``, ``check_run``..."""
        if self._github_write:
            self._github_write(kind)


@dataclass
class Context:
    """What a handler receives (Probot's ``context``)."""

    job: ReviewJob
    payload: dict[str, Any]
    config: LoadedConfig  # the repository's (default branch) over the server's, else the server's
    github: Callable[[], Github]  # an installation client, scoped to this one repository
    superseded: Callable[[], bool]  # True once a newer head of this PR was delivered
    metrics: JobMetrics = field(default_factory=JobMetrics)
    # The login this App's comments carry ("<slug>[bot]"), None when unknown
    bot_login: Callable[[], str | None] = lambda: None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("depthgate.app.job"))
    # The App's settings, read from the environment once at startup (the gateway variables of
    # the job's config are resolved from settings.env)
    settings: AppSettings = field(default_factory=AppSettings)

    def repo(self) -> tuple[str, str]:
        """``(owner, name)`` of the repository the event is about."""
        owner, _, name = self.job.repository.partition("/")
        return owner, name

    def pull_request(self) -> tuple[str, str, int]:
        """``(owner, name, number)``; raises when the event is about no pull request."""
        if self.job.pr_number is None:
            raise TypeError(f"{self.job.event} is not about a pull request")
        return (*self.repo(), self.job.pr_number)


Handler = Callable[[Context], "JobResult | Awaitable[JobResult | None] | None"]
FailureHandler = Callable[[Context | None, ReviewJob | None, str], None]


class App:
    """Handlers by event name (``"pull_request"`` or ``"pull_request.opened"``)."""

    def __init__(self, *, skip_drafts: bool = True) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._on_failure: list[FailureHandler] = []
        self.skip_drafts = skip_drafts
        # Replaced only by tests and extensions: how a job's config is found (the default reads
        # the repository's gateway-routes.yaml from the default branch through the installation
        # client and lays it over the server's: depthgate.configfile.read_repository_config).
        self.config_loader: Callable[[ReviewJob, Callable[[], Github]], LoadedConfig] | None = None

    def on(self, *events: str) -> Callable[[Handler], Handler]:
        """Subscribe a handler: ``@app.on("pull_request.opened", "pull_request.synchronize")``."""
        if not events:
            raise ValueError("app.on() needs at least one event name")
        for name in events:
            if not name or name.count(".") > 1 or name.startswith(".") or name.endswith("."):
                raise ValueError(f"not an event name: {name!r} (write 'event' or 'event.action')")

        def register(handler: Handler) -> Handler:
            for name in events:
                self._handlers.setdefault(name, []).append(handler)
            return handler

        return register

    def on_failure(self, handler: FailureHandler) -> FailureHandler:
        """Called once when a job has failed for good (attempts exhausted, or a worker died on
        every attempt), with the context when one could be built and the error text. The
        review registers one that completes its check run with ``failure`` and the handoff."""
        self._on_failure.append(handler)
        return handler

    @property
    def failure_handlers(self) -> tuple[FailureHandler, ...]:
        return tuple(self._on_failure)

    def events(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def accepts(self, event: str, action: str | None) -> bool:
        return event in self._handlers or (
            action is not None and f"{event}.{action}" in self._handlers
        )

    def handlers_for(self, name: str) -> list[Handler]:
        """Handlers of ``event`` and of ``event.action``, each once, in subscription order."""
        names = [name.split(".", 1)[0], name] if "." in name else [name]
        unique: list[Handler] = []
        for key in names:
            for handler in self._handlers.get(key, ()):
                if handler not in unique:
                    unique.append(handler)
        return unique


def run_handlers(handlers: Iterable[Handler], ctx: Context) -> JobResult:
    """Run every handler; the worst conclusion wins, summaries are joined."""
    results: list[JobResult] = []
    for handler in handlers:
        out = handler(ctx)
        if inspect.isawaitable(out):
            out = asyncio.run(_await(out))
        if out is not None:
            results.append(out)
    if not results:
        return JobResult("neutral", "no handler reported a result")
    worst = max(results, key=lambda r: _RANK[r.conclusion])
    review_id = next((r.review_id for r in results if r.review_id is not None), None)
    summary = "\n".join(r.summary for r in results if r.summary)
    return JobResult(worst.conclusion, summary, review_id)


async def _await(aw: Awaitable[JobResult | None]) -> JobResult | None:
    return await aw


def parse_payload(payload: bytes) -> dict[str, Any]:
    data = json.loads(payload)
    return data if isinstance(data, dict) else {}
