"""The handler module of bench/webhook_load.py: every review job is a no-op (no GitHub, no
gateway), so that the benchmark measures the webhook's acknowledgement and the queue."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from depthgate.app import App, Context, JobResult, ReviewJob
from depthgate.app.surface import REVIEW_EVENTS
from depthgate.configfile import load_config
from depthgate.core.routes import LoadedConfig


@cache
def _server_config() -> LoadedConfig:
    return load_config(None)


def _config(job: ReviewJob, github: Callable[[], Any]) -> LoadedConfig:
    return _server_config()


def _noop(ctx: Context) -> JobResult:
    return JobResult("neutral", "benchmark")


def register(app: App) -> None:
    # Loaded now, as depthgate serve loads the operator's config before it listens: parsed on
    # the first job instead, it held the GIL for ~150 ms while the first deliveries came in,
    # and those deliveries were the run's p99 (bench/webhook_load.py).
    _server_config()
    app.config_loader = _config
    app.on(*REVIEW_EVENTS)(_noop)
