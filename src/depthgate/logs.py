"""Logging that never prints a secret: the redacting formatter the entry points install.

Log lines carry what libraries put in them -- httpx logs every request with its full URL, an
exception carries the text a gateway or GitHub answered -- so redaction happens where a record
becomes text, for every logger: credential shapes and exact secret values
(:mod:`depthgate.core.secretscan`), and the gateway URL (its host too, unless the operator
chose to show it: ``gateway.show_host``), as the handoff note and the check run do.

The entry points call :func:`install` once with what they know from the environment; the App's
jobs add each job's gateway key and URL with :func:`protect` (a repository's config may name
another variable than the server's default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from depthgate.core.routes import GatewayConfig
from depthgate.core.secretscan import REDACTED, redact
from depthgate.github.actions import SECRET_ENV as OUTPUT_SECRET_ENV

# The variables whose values never appear in a log line: the ones never printed anywhere, and
# the gateway's default key and URL variables (a job adds its own with protect())
_DEFAULTS = GatewayConfig()
SECRET_ENV = (*OUTPUT_SECRET_ENV, _DEFAULTS.api_key_env)
URL_ENV = tuple(v for v in (_DEFAULTS.base_url_env,) if v)

_lock = threading.Lock()
_secrets: dict[str, None] = {}
_urls: dict[str, None] = {}


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line -- message, arguments, traceback -- is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_line(super().format(record))


def redact_line(text: str) -> str:
    with _lock:
        secrets, urls = tuple(_secrets), tuple(_urls)
    for url in urls:  # longest first: a URL before its host
        text = text.replace(url, REDACTED)
    return redact(text, secrets)


def protect(
    secrets: Iterable[str] = (), urls: Iterable[str] = (), *, show_host: bool = False
) -> None:
    """From now on, these values are redacted from every log line. A URL is redacted whole,
    and its host too unless ``show_host``."""
    found: list[str] = []
    for url in urls:
        if not url:
            continue
        found.append(url.rstrip("/"))
        host = urlsplit(url).netloc
        if host and not show_host:
            found.append(host)
    with _lock:
        _secrets.update(dict.fromkeys(s for s in secrets if s))
        _urls.update(dict.fromkeys(found))
        ordered = sorted(_urls, key=len, reverse=True)
        _urls.clear()
        _urls.update(dict.fromkeys(ordered))


def install(env: Mapping[str, str], *, show_host: bool = False) -> None:
    """Make every handler of the root logger redact, and protect what ``env`` holds."""
    protect(
        (env.get(name, "") for name in SECRET_ENV),
        (env.get(name, "") for name in URL_ENV),
        show_host=show_host,
    )
    # lastResort prints WARNING and above when nothing is configured (the CLI)
    handlers = [
        *logging.getLogger().handlers,
        *([logging.lastResort] if logging.lastResort else []),
    ]
    for handler in handlers:
        current = handler.formatter
        if isinstance(current, RedactingFormatter):
            continue
        fmt = current._fmt if current is not None else None
        datefmt = current.datefmt if current is not None else None
        handler.setFormatter(RedactingFormatter(fmt, datefmt))
