"""What ``serve`` and ``worker`` check before they start, so that a process that cannot review
fails at once with a message saying what to set -- not hours later, one job at a time, while
``/healthz`` says ok:

* the gateway settings of the server's config (``--config``, else the packaged default)
  resolve: the URL and the key are set, the URL has a scheme (only for the review handler:
  another handler module may not call a gateway);
* the queue answers: Redis within a few seconds, the SQLite file can be opened.

The same checks, without the queue (``/healthz`` pings that itself), feed ``/healthz``'s list of
what is missing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from depthgate.app.errors import AppConfigError
from depthgate.app.queue import Queue
from depthgate.app.settings import AppSettings
from depthgate.core.errors import DepthgateError
from depthgate.core.routes import LoadedConfig
from depthgate.gateway.client import GatewaySettings

REDIS_TIMEOUT_S = 5.0


def missing(settings: AppSettings, server_config: LoadedConfig, *, gateway: bool) -> list[str]:
    """What keeps this process from reviewing, one line each; empty when nothing."""
    problems = []
    if gateway:
        try:
            GatewaySettings.from_config(server_config.config.gateway, settings.env)
        except DepthgateError as exc:
            problems.append(f"gateway: {exc.message}")
    return problems


def require(
    settings: AppSettings, server_config: LoadedConfig, queue: Queue, *, gateway: bool
) -> None:
    """Raise one :class:`AppConfigError` naming every problem found."""
    problems = missing(settings, server_config, gateway=gateway)
    problem = _queue_problem(settings, queue)
    if problem:
        problems.append(problem)
    if problems:
        raise AppConfigError(
            "cannot start: " + "; ".join(problems) + " (README: 'Running as a GitHub App')"
        )


def _queue_problem(settings: AppSettings, queue: Queue) -> str | None:
    target = settings.queue
    if target.kind == "redis":
        parts = urlsplit(target.url)
        where = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"  # never the password
        client = redis.Redis.from_url(
            target.url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            return (
                f"queue: DEPTHGATE_QUEUE_URL: Redis at {where} does not answer "
                f"({type(exc).__name__}); start Redis there or fix the URL"
            )
        finally:
            client.close()
        return None
    try:
        queue.store.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, the file is unusable
        return (
            f"queue: DEPTHGATE_QUEUE_URL: the SQLite file {target.path} cannot be used "
            f"({type(exc).__name__}: {exc}); check the path and its folder's permissions"
        )
    return None
