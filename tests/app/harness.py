"""An in-process harness: a queue, a job runner with recording handlers, and a drain loop that
runs queued messages on the test's thread (no consumer threads, no sleeps)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from depthgate.app import App, Context, JobResult, ReviewJob
from depthgate.app.jobs import Accepted, job_spec
from depthgate.app.metrics import Metrics
from depthgate.app.queue import JobRunner, Queue, Reaper
from depthgate.app.settings import AppSettings
from depthgate.configfile import load_config
from depthgate.core.routes import LoadedConfig
from tests.app.helpers import pr_payload


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, settings: AppSettings, app: App | None = None, auth: Any = None) -> None:
        self.settings = settings
        self.app = app or App()
        if self.app.config_loader is None:
            self.app.config_loader = self._config
        self.config: LoadedConfig = load_config(None)
        self.clock = Clock()
        self.queue = Queue(settings)
        self.metrics = Metrics()
        self.runner = JobRunner(
            self.app,
            self.queue,
            settings,
            server_config=self.config,
            auth=auth,
            metrics=self.metrics,
            clock=self.clock,
        )
        self.queue.bind(self.runner)
        self.reaper = Reaper(self.queue, settings, self.metrics, clock=self.clock)
        self.seq = 0

    def _config(self, job: ReviewJob, github: Any) -> LoadedConfig:
        return self.config

    def with_config_text(self, extra: str) -> None:
        """Change the config's hash (as a new commit on the default branch would)."""
        self.config = replace(self.config, sha256=self.config.sha256[:-8] + extra[:8].rjust(8))

    def deliver(
        self,
        payload: dict[str, Any] | None = None,
        delivery: str | None = None,
        event: str = "pull_request",
    ) -> str:
        self.seq += 1
        payload = payload or pr_payload()
        spec = job_spec(event, delivery or f"d-{self.seq}", payload)
        return self.queue.accept(spec, json.dumps(payload).encode(), self.clock()).value

    def drain(self, limit: int = 200) -> list[str]:
        """Run every ready message; returns the job keys run, in order."""
        ran: list[str] = []
        for _ in range(limit):
            if self.queue.ready_count() == 0:
                return ran
            task = self.queue.huey.dequeue()
            if task is None:
                return ran
            ran.append(task.args[0])
            self.queue.huey.execute(task)
        raise AssertionError(f"queue not drained after {limit} messages")

    def close(self) -> None:
        self.queue.close()


class Recorder:
    """A handler that records its calls and answers with a script (exceptions are raised)."""

    def __init__(self, *script: JobResult | BaseException) -> None:
        self.calls: list[Context] = []
        self.script = list(script) or [JobResult("success", "ok")]

    def __call__(self, ctx: Context) -> JobResult:
        self.calls.append(ctx)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step


__all__ = ["Accepted", "Clock", "Harness", "Recorder"]
