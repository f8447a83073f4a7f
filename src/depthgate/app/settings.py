"""The app's settings, read from the environment by the entry points only (design §7).

Everything below the entry point receives an :class:`AppSettings` value; nothing else reads
``os.environ``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from depthgate.app.errors import AppConfigError
from depthgate.github.api import DEFAULT_API_URL
from depthgate.github.api import api_url as read_api_url

DEFAULT_QUEUE_URL = "sqlite:///depthgate-queue.db"
MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub never sends more (docs/platform.md, GitHub)


@dataclass(frozen=True)
class QueueTarget:
    """Where the queue lives: a SQLite file (embedded default) or a Redis URL (scale-out)."""

    kind: str  # "sqlite" | "redis"
    path: str = ""  # sqlite: the database file
    url: str = ""  # redis: the connection URL


def parse_queue_url(url: str) -> QueueTarget:
    """``sqlite:///relative.db``, ``sqlite:////abs.db`` (as SQLAlchemy writes them), or
    ``redis://host:port/db`` / ``rediss://...``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path.endswith("/"):
            raise AppConfigError(
                f"DEPTHGATE_QUEUE_URL={url!r}: no database file; write sqlite:///relative.db "
                "or sqlite:////absolute/path.db"
            )
        return QueueTarget("sqlite", path=path)
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise AppConfigError(f"DEPTHGATE_QUEUE_URL: {parts.scheme}:// URL without a host")
        return QueueTarget("redis", url=url)
    shown = parts.scheme or url[:20]
    raise AppConfigError(
        f"DEPTHGATE_QUEUE_URL: unsupported queue {shown!r}; use sqlite:///FILE.db (the default, "
        "one machine) or redis://HOST:PORT/DB (any number of workers)"
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with capped exponential backoff. ``base_s=0`` turns waiting off
    (tests), keeping the attempt count."""

    max_attempts: int = 4
    base_s: float = 15.0
    cap_s: float = 600.0

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if self.base_s <= 0:
            return 0.0
        return float(min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class ConnectionLimits:
    """Bounds of every connection to the webhook server (app/httpguard.py). GitHub sends about
    2 KB of headers and its whole delivery at once; nothing legitimate comes near these."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout_s: float = 5.0  # request line and headers, from the first byte
    body_timeout_s: float = 20.0  # the whole body, from the end of the headers
    max_connections: int = 1000  # open at once; more get 503 (uvicorn's limit_concurrency)
    # request bodies held at once, all connections together: past it a delivery gets 503 (ten
    # of GitHub's largest fit; a real delivery is tens of KB)
    max_body_bytes_in_flight: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class AppSettings:
    webhook_secrets: tuple[str, ...] = ()  # the current secret first, then the previous one
    app_id: str | None = None
    private_key: str | None = None
    queue_url: str = DEFAULT_QUEUE_URL
    api_url: str = DEFAULT_API_URL
    config_path: str | None = None  # the server's own gateway-routes.yaml (fallback)
    max_body_bytes: int = MAX_BODY_BYTES
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    # A running job holds a lease it renews every lease/3 s; a worker that died loses it and
    # the reaper queues the job again. A queued job nobody claimed within stale_s is queued
    # again too (a message lost between a dequeue and a crash).
    lease_s: float = 120.0
    stale_s: float = 900.0
    reap_interval_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    bot_login: str | None = None  # DEPTHGATE_BOT_LOGIN: whose comments are depthgate's own
    # The environment as it was at startup: a repository's gateway-routes.yaml names the
    # variables of its gateway URL, key and headers, resolved for each job from here (never
    # from os.environ at job time). Not in the repr: it holds the secrets.
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def queue(self) -> QueueTarget:
        return parse_queue_url(self.queue_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, config_path: str | None = None) -> AppSettings:
        secrets = tuple(
            s
            for s in (
                env.get("DEPTHGATE_WEBHOOK_SECRET", ""),
                env.get("DEPTHGATE_WEBHOOK_SECRET_PREVIOUS", ""),
            )
            if s
        )
        key = env.get("DEPTHGATE_PRIVATE_KEY") or None
        key_path = env.get("DEPTHGATE_PRIVATE_KEY_PATH") or None
        if key is None and key_path is not None:
            try:
                key = Path(key_path).read_text(encoding="utf-8")
            except OSError as exc:
                raise AppConfigError(
                    f"DEPTHGATE_PRIVATE_KEY_PATH={key_path}: cannot be read ({exc.strerror}); "
                    "point it at the App's .pem private key"
                ) from None
        if key is not None and "PRIVATE KEY" not in key:
            raise AppConfigError(
                "DEPTHGATE_PRIVATE_KEY / DEPTHGATE_PRIVATE_KEY_PATH: not a PEM private key "
                "(expected '-----BEGIN RSA PRIVATE KEY-----'); download one from the App's "
                "settings page"
            )
        connections = ConnectionLimits(
            header_timeout_s=_float(
                env, "DEPTHGATE_HEADER_TIMEOUT_S", ConnectionLimits.header_timeout_s, 0.1
            ),
            body_timeout_s=_float(
                env, "DEPTHGATE_BODY_TIMEOUT_S", ConnectionLimits.body_timeout_s, 0.1
            ),
            max_connections=_int(
                env, "DEPTHGATE_MAX_CONNECTIONS", ConnectionLimits.max_connections, 1
            ),
            max_body_bytes_in_flight=_int(
                env,
                "DEPTHGATE_MAX_BODY_BYTES_IN_FLIGHT",
                ConnectionLimits.max_body_bytes_in_flight,
                MAX_BODY_BYTES,
            ),
        )
        retry = RetryPolicy(
            max_attempts=_int(env, "DEPTHGATE_JOB_ATTEMPTS", RetryPolicy.max_attempts, 1),
            base_s=_float(env, "DEPTHGATE_RETRY_BACKOFF_S", RetryPolicy.base_s),
        )
        settings = cls(
            webhook_secrets=secrets,
            app_id=env.get("DEPTHGATE_APP_ID") or None,
            private_key=key,
            queue_url=env.get("DEPTHGATE_QUEUE_URL") or DEFAULT_QUEUE_URL,
            api_url=read_api_url(env),
            config_path=config_path,
            lease_s=_float(env, "DEPTHGATE_JOB_LEASE_S", cls.lease_s, minimum=0.1),
            stale_s=_float(env, "DEPTHGATE_JOB_STALE_S", cls.stale_s, minimum=0.1),
            reap_interval_s=_float(env, "DEPTHGATE_REAP_INTERVAL_S", cls.reap_interval_s, 0.05),
            retry=retry,
            bot_login=env.get("DEPTHGATE_BOT_LOGIN") or None,
            env=dict(env),
            connections=connections,
        )
        settings.queue  # noqa: B018 - validate the URL now, with the variable's name
        return settings

    def require_webhook_secret(self) -> None:
        if not self.webhook_secrets:
            raise AppConfigError(
                "DEPTHGATE_WEBHOOK_SECRET is not set: set it to the webhook secret of the GitHub "
                "App (depthgate never accepts unsigned deliveries)"
            )

    def require_app_credentials(self) -> None:
        if not self.app_id or not self.private_key:
            raise AppConfigError(
                "the GitHub App's credentials are missing: set DEPTHGATE_APP_ID (the App ID or "
                "client ID) and DEPTHGATE_PRIVATE_KEY or DEPTHGATE_PRIVATE_KEY_PATH (its .pem key)"
            )


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise AppConfigError(f"{name}={raw!r}: expected a number of seconds") from None
    if not math.isfinite(value):
        raise AppConfigError(f"{name}={raw!r}: expected a finite number of seconds")
    if value < minimum:
        raise AppConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AppConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise AppConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value
