"""The queue: huey underneath (``SqliteHuey`` embedded, ``RedisHuey`` to scale out), one task
definition, and the job runner and reaper around it.

A queue message carries only a job key. The worker claims the job in the store (a duplicate or
stale message runs nothing), reads the repository's config, runs the handlers with a lease it
keeps renewing, and records the outcome. A handler that raises is retried with capped
exponential backoff up to ``max_attempts``; what fails for good is logged, counted and handed
to the app's failure handlers (the review's completes its check run with ``failure``). The
reaper re-queues jobs whose worker died (lease expired) and queued jobs whose message was lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from github import GithubException
from huey import RedisHuey, SqliteHuey
from huey.api import Huey, TaskWrapper

from depthgate.app.auth import RepoRef
from depthgate.app.errors import AppNotInstalled
from depthgate.app.jobs import Accepted, Claim, JobSpec, JobState, Skip
from depthgate.app.metrics import Metrics
from depthgate.app.redis_store import RedisJobStore
from depthgate.app.settings import AppSettings
from depthgate.app.store import JobStore, SqliteJobStore
from depthgate.app.surface import (
    App,
    Context,
    JobMetrics,
    JobResult,
    ReviewJob,
    parse_payload,
    run_handlers,
)
from depthgate.configfile import read_repository_config
from depthgate.core.errors import EXIT_USAGE, ConfigError, DepthgateError
from depthgate.core.routes import LoadedConfig
from depthgate.github.client import GitHubSettings, PullRequestClient

if TYPE_CHECKING:
    from github import Github

    from depthgate.app.auth import AppAuthenticator

log = logging.getLogger("depthgate.app.queue")

TASK_NAME = "depthgate.job"


class Queue:
    def __init__(self, settings: AppSettings, *, name: str = "depthgate") -> None:
        self.settings = settings
        target = settings.queue
        self.huey: Huey
        if target.kind == "sqlite":
            Path(target.path).parent.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(name=name, filename=target.path, results=False, utc=True)
            self.store: JobStore = SqliteJobStore(self.huey.storage)
        else:
            self.huey = RedisHuey(name=name, url=target.url, results=False, utc=True)
            self.store = RedisJobStore(self.huey.storage, stale_s=settings.stale_s)
        self._runner: Callable[[str], object] | None = None
        self.task: TaskWrapper = self.huey.task(name=TASK_NAME)(self._run)

    def _run(self, key: str) -> None:
        if self._runner is None:
            raise RuntimeError("this process has no job runner (serve and worker bind one)")
        self._runner(key)

    def bind(self, runner: Callable[[str], object]) -> None:
        self._runner = runner

    def message(self, key: str) -> bytes:
        data: bytes = self.huey.serialize_task(self.task.s(key))
        return data

    def accept(self, spec: JobSpec, payload: bytes, now: float) -> Accepted:
        """Record the delivery, create or update its job and queue it: one atomic step."""
        return self.store.accept(spec, payload, self.message(spec.key), now)

    def enqueue(self, key: str, delay: float = 0.0) -> None:
        if delay > 0:
            self.task.schedule(args=(key,), delay=delay)
        else:
            self.huey.enqueue(self.task.s(key))

    def ready_count(self) -> int:
        return int(self.huey.pending_count())

    def scheduled_count(self) -> int:
        return int(self.huey.scheduled_count())

    def close(self) -> None:
        storage: Any = self.huey.storage
        if hasattr(storage, "close"):
            storage.close()


def load_repo_config(
    job: ReviewJob, github: Callable[[], Github], operator: LoadedConfig
) -> LoadedConfig:
    """The repository's config on the default branch (never the PR's head) over the server's
    own, in one GitHub read; the server's alone when the repository has none."""
    client = PullRequestClient(
        job.repository, job.pr_number or 0, GitHubSettings(token=""), github=github()
    )
    return read_repository_config(client, job.repository, job.default_branch or "HEAD", operator)


class ConfigRefused(ConfigError):
    """The repository's config cannot be used; no retry can fix it. Carries the job's context
    (with the server's config) so that the failure handlers can say so on the check run."""

    def __init__(self, message: str, context: Context) -> None:
        super().__init__(message)
        self.context = context


def _status_401(exc: BaseException) -> bool:
    if isinstance(exc, GithubException):
        return exc.status == 401
    return getattr(exc, "http_status", None) == 401


class _Heartbeats:
    """One daemon thread renews the lease of every job this process is running."""

    def __init__(self, store: JobStore, lease_s: float, clock: Callable[[], float]) -> None:
        self._store, self._lease, self._clock = store, lease_s, clock
        self._held: dict[str, str] = {}  # job key -> claim token
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while True:
            time.sleep(self._lease / 3)
            with self._lock:
                held = list(self._held.items())
            for key, token in held:
                try:
                    self._store.heartbeat(key, token, self._clock() + self._lease)
                except Exception:  # a store hiccup: the next beat tries again
                    log.exception("could not renew the lease of job %s", key)

    @contextmanager
    def hold(self, key: str, token: str) -> Iterator[None]:
        with self._lock:
            self._held[key] = token
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._beat, name="depthgate-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(key, None)


class JobRunner:
    """Runs one job per call (the huey task's body)."""

    def __init__(
        self,
        app: App,
        queue: Queue,
        settings: AppSettings,
        *,
        server_config: LoadedConfig,
        auth: AppAuthenticator | None,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.queue = queue
        self.store = queue.store
        self.settings = settings
        self.server_config = server_config
        self.auth = auth
        self.metrics = metrics
        self.clock = clock
        self._heartbeats = _Heartbeats(queue.store, settings.lease_s, clock)

    def __call__(self, key: str) -> str:
        return self.run(key)

    def run(self, key: str) -> str:
        """Claim and run the job; returns its outcome (also counted in the metrics)."""
        claim = self.store.claim(key, self.clock(), self.settings.lease_s)
        if isinstance(claim, Skip):
            outcome = "superseded" if claim.reason == "superseded" else "skipped"
            self.metrics.jobs.labels(outcome).inc()
            log.debug("job %s not run: %s", key, claim.reason)
            return outcome
        started = time.monotonic()
        with self._heartbeats.hold(key, claim.token):
            outcome = self._run_claimed(claim)
        self.metrics.jobs.labels(outcome).inc()
        self.metrics.job_seconds.labels(outcome).observe(time.monotonic() - started)
        return outcome

    def _run_claimed(self, claim: Claim) -> str:
        spec, max_attempts = claim.spec, self.settings.retry.max_attempts
        ctx: Context | None = None
        if claim.attempt > max_attempts:
            # the failure handlers complete what the attempts left in progress (a check run)
            return self._fail(
                claim,
                self._context_if_possible(claim),
                "the worker running it stopped on every attempt",
            )
        try:
            ctx = self._context(claim)
            if claim.reviewed_config_hash == ctx.job.config_hash:
                self._finish(claim, JobState.DONE, "neutral", None, ctx.job.config_hash)
                log.info("job %s: already reviewed with this config; nothing to do", spec.key)
                return "already_reviewed"
            result = self._handle(ctx)
        except ConfigRefused as exc:
            return self._fail(claim, exc.context, exc.message)
        except DepthgateError as exc:
            # a configuration error, or an App not installed there: no retry can fix it
            if isinstance(exc, AppNotInstalled):
                # no token: the failure handlers could write nothing, and asking again is futile
                return self._fail(claim, None, exc.message)
            if exc.exit_code == EXIT_USAGE:
                return self._fail(claim, ctx, exc.message)
            return self._retry_or_fail(claim, ctx, exc.message)
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then recorded
            return self._retry_or_fail(claim, ctx, f"{type(exc).__name__}: {exc}")
        self._finish(claim, JobState.DONE, result.conclusion, None, ctx.job.config_hash)
        log.info(
            "job %s (%s, delivery %s): %s",
            spec.key,
            spec.event,
            spec.delivery_id,
            result.conclusion,
        )
        return result.conclusion

    def _handle(self, ctx: Context) -> JobResult:
        handlers = self.app.handlers_for(ctx.job.event)
        try:
            return run_handlers(handlers, ctx)
        except Exception as exc:
            if not _status_401(exc) or self.auth is None:
                raise
        # GitHub rejected the installation token: mint a new one, once, and run again (the
        # handlers find what they already posted through their posting marker).
        log.warning("job %s: GitHub answered 401; re-minting the installation token", ctx.job.key)
        self.auth.invalidate(ctx.job.installation_id, _repo_ref(ctx.job))
        return run_handlers(handlers, ctx)

    def _context(self, claim: Claim) -> Context:
        spec = claim.spec
        auth = self.auth
        clients: list[Github] = []

        def github() -> Github:
            if auth is None:
                raise DepthgateError(
                    "this worker has no GitHub App credentials (DEPTHGATE_APP_ID, "
                    "DEPTHGATE_PRIVATE_KEY)"
                )
            if not clients:
                clients.append(auth.client(spec.installation_id, _repo_ref(spec)))
            return clients[0]

        draft = ReviewJob(
            key=spec.key,
            event=spec.event,
            delivery_id=spec.delivery_id,
            installation_id=spec.installation_id,
            repository=spec.repository,
            repository_id=spec.repository_id,
            default_branch=spec.default_branch,
            pr_number=spec.pr_number,
            head_sha=spec.head_sha,
            attempt=claim.attempt,
            config_hash="",
        )

        def context(config: LoadedConfig) -> Context:
            return Context(
                job=ReviewJob(**{**draft.__dict__, "config_hash": config.sha256}),
                payload=parse_payload(claim.payload),
                config=config,
                github=github,
                superseded=lambda: not self.store.is_current(spec),
                metrics=JobMetrics(self.metrics.gateway_call, self.metrics.github_write),
                bot_login=auth.bot_login if auth is not None else lambda: None,
                settings=self.settings,
            )

        loader = self.app.config_loader or (
            lambda job, gh: load_repo_config(job, gh, self.server_config)
        )
        try:
            config = loader(draft, github)
        except ConfigError as exc:
            # the server's config only reports the refusal: the failure handlers write it on
            # the check run
            raise ConfigRefused(exc.message, context(self.server_config)) from None
        for warning in config.warnings:
            log.warning("job %s: %s", spec.key, warning)
        return context(config)

    def _context_if_possible(self, claim: Claim) -> Context | None:
        try:
            return self._context(claim)
        except Exception:  # noqa: BLE001 - the job fails anyway; without a context, quietly
            log.warning("job %s: no context for its failure handlers", claim.spec.key)
            return None

    def _retry_or_fail(self, claim: Claim, ctx: Context | None, error: str) -> str:
        policy = self.settings.retry
        if claim.attempt >= policy.max_attempts:
            return self._fail(claim, ctx, error)
        delay = policy.delay(claim.attempt)
        if self.store.retry_later(claim.spec.key, claim.token, self.clock() + delay, error):
            self.queue.enqueue(claim.spec.key, delay)
        log.warning(
            "job %s attempt %d/%d failed (%s); retrying in %.0f s",
            claim.spec.key,
            claim.attempt,
            policy.max_attempts,
            error,
            delay,
        )
        return "retried"

    def _fail(self, claim: Claim, ctx: Context | None, error: str) -> str:
        spec = claim.spec
        self._finish(claim, JobState.FAILED, "failure", error, None)
        log.error(
            "job %s (%s #%s at %s, delivery %s) failed for good after %d attempt(s): %s. "
            "Fix the cause, then redeliver the delivery from the App's advanced settings "
            "(or run depthgate reconcile).",
            spec.key,
            spec.repository,
            spec.pr_number,
            spec.head_sha,
            spec.delivery_id,
            min(claim.attempt, self.settings.retry.max_attempts),
            error,
        )
        job = ctx.job if ctx is not None else None
        for handler in self.app.failure_handlers:
            try:
                handler(ctx, job, error)
            except Exception:  # reporting a failure must not hide it
                log.exception("job %s: the failure handler %r failed", spec.key, handler)
        return "failed"

    def _finish(
        self,
        claim: Claim,
        state: JobState,
        conclusion: str | None,
        error: str | None,
        config_hash: str | None,
    ) -> None:
        if not self.store.finish(
            claim.spec.key,
            claim.token,
            state,
            now=self.clock(),
            conclusion=conclusion,
            error=error,
            config_hash=config_hash if state == JobState.DONE else None,
        ):
            log.warning(
                "job %s: lost its lease before finishing (another worker may run it again)",
                claim.spec.key,
            )


def _repo_ref(job: ReviewJob | JobSpec) -> RepoRef:
    return RepoRef(job.repository, job.repository_id)


class Reaper:
    """Re-queues jobs whose worker died and queued jobs whose message was lost, every
    ``interval`` seconds, on a daemon thread."""

    def __init__(
        self,
        queue: Queue,
        settings: AppSettings,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="depthgate-reaper", daemon=True)

    def reap_once(self) -> list[str]:
        keys = self.queue.store.reap(self.clock(), self.settings.stale_s)
        for key in keys:
            self.queue.enqueue(key)
            log.warning("job %s re-queued: its worker stopped or its message was lost", key)
        if keys and self.metrics is not None:
            self.metrics.jobs.labels("reaped").inc(len(keys))
        return keys

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reap_once()
            except Exception:  # a store hiccup must not end the reaper
                log.exception("reaper: could not read the job store; trying again")
            self._stop.wait(self.settings.reap_interval_s)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
