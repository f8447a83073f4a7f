"""Wiring for the three commands: ``serve`` (web + in-process workers), ``worker`` (workers
only) and the handler module they load. The only code here that starts threads and servers."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import uvicorn
from huey.consumer import Consumer
from prometheus_client import start_http_server

from depthgate.app import preflight
from depthgate.app.auth import AppAuthenticator
from depthgate.app.errors import AppConfigError
from depthgate.app.httpguard import server_config
from depthgate.app.metrics import Metrics
from depthgate.app.queue import JobRunner, Queue, Reaper
from depthgate.app.server import create_app
from depthgate.app.settings import AppSettings
from depthgate.app.surface import REVIEW_EVENTS, App
from depthgate.configfile import load_config

log = logging.getLogger("depthgate.app")

DEFAULT_HANDLERS = "depthgate.app.handlers"
SWITCH_INTERVAL_S = 0.001


def load_handlers(app: App, module_name: str = DEFAULT_HANDLERS) -> None:
    """Import the handler module and let it subscribe: ``register(app)`` if it defines one,
    else its ``review_job`` for the review events."""
    try:
        module: ModuleType = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppConfigError(
            f"the handler module {module_name} cannot be imported ({exc}); "
            + (
                "the review handler ships with depthgate: reinstall it with the app extra "
                "(pip install 'depthgate[app]')"
                if module_name == DEFAULT_HANDLERS
                else "check --handlers"
            )
        ) from None
    register = getattr(module, "register", None)
    review_job = getattr(module, "review_job", None)
    if callable(register):
        register(app)
    elif callable(review_job):
        app.on(*REVIEW_EVENTS)(review_job)
    else:
        raise AppConfigError(f"{module_name} defines neither register(app) nor review_job(ctx)")
    if not app.events():
        raise AppConfigError(f"{module_name} subscribed no handler")


@dataclass
class Runtime:
    app: App
    settings: AppSettings
    queue: Queue
    metrics: Metrics
    runner: JobRunner
    missing: Callable[[], list[str]] = list  # what /healthz reports as missing


def build_runtime(
    settings: AppSettings, *, handlers: str = DEFAULT_HANDLERS, app: App | None = None
) -> Runtime:
    if app is None:
        app = App()
        load_handlers(app, handlers)
    settings.require_app_credentials()
    assert settings.app_id is not None
    assert settings.private_key is not None
    auth = AppAuthenticator(settings.app_id, settings.private_key, api_url=settings.api_url)
    server_config = load_config(settings.config_path)
    queue = Queue(settings)
    reviews = handlers == DEFAULT_HANDLERS
    try:
        preflight.require(settings, server_config, queue, gateway=reviews)
    except AppConfigError:
        queue.close()
        raise
    metrics = Metrics()
    metrics.bind_queue(
        lambda: float(queue.store.active_count()),
        lambda: float(queue.ready_count()),
        lambda: float(queue.scheduled_count()),
    )
    runner = JobRunner(
        app, queue, settings, server_config=server_config, auth=auth, metrics=metrics
    )
    queue.bind(runner)

    def still_missing() -> list[str]:
        return preflight.missing(settings, server_config, gateway=reviews)

    return Runtime(app, settings, queue, metrics, runner, still_missing)


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """huey's consumer inside a process whose signals belong to uvicorn."""

    def _set_signal_handlers(self) -> None:
        return


def start_workers(rt: Runtime, workers: int) -> tuple[Consumer, Reaper]:
    consumer = _EmbeddedConsumer(
        rt.queue.huey,
        workers=workers,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        max_delay=0.5,
        check_worker_health=True,
        shutdown_timeout=30,
    )
    consumer.start()
    reaper = Reaper(rt.queue, rt.settings, rt.metrics).start()
    return consumer, reaper


def serve(rt: Runtime, *, host: str, port: int, workers: int) -> int:
    """Web and workers in one process: the embedded default (SQLite, one machine)."""
    asgi = create_app(rt.app, rt.queue, rt.settings, rt.metrics, missing=rt.missing)
    # The webhook's event loop shares the interpreter with the worker threads: a 1 ms switch
    # interval (CPython's default is 5 ms) hands it the GIL sooner when a job is running Python
    # code, which keeps acknowledgements fast while jobs run (bench/webhook_load.py).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    consumer, reaper = start_workers(rt, workers)
    log.info(
        "depthgate serve on http://%s:%d (queue %s, %d worker thread(s))",
        host,
        port,
        rt.settings.queue.kind,
        workers,
    )
    config = server_config(asgi, rt.settings.connections, host=host, port=port)
    try:
        uvicorn.Server(config).run()
    finally:
        reaper.stop()
        consumer.stop(graceful=True)
        rt.queue.close()
    return 0


def work(rt: Runtime, *, workers: int, metrics_port: int | None = None) -> int:
    """Workers only, against the shared queue (Redis to scale out, or the SQLite file of a
    ``serve`` on the same machine). SIGINT stops gracefully, SIGTERM at once (huey)."""
    if rt.settings.queue.kind == "sqlite":
        log.info("depthgate worker on a SQLite queue: only processes on this machine share it")
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=rt.metrics.registry)
    consumer = rt.queue.huey.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        max_delay=0.5,
        check_worker_health=True,
    )
    reaper = Reaper(rt.queue, rt.settings, rt.metrics).start()
    try:
        consumer.run()
    finally:
        reaper.stop()
        rt.queue.close()
    return 0


def settings_from(env: Mapping[str, str], args: Any) -> AppSettings:
    return AppSettings.from_env(env, config_path=getattr(args, "config", None))
