"""The gateway's base URL, checked when the settings are resolved -- not at the first call, where
a mistake shows up as a misleading error class with the URL redacted.

* No ``http://`` or ``https://`` scheme (``litellm.internal:4000``): a clear error naming the
  variable; httpx would otherwise fail every call as ``connection``.
* The OpenAI SDK habit of a base URL ending in ``/v1`` (``https://gw.example/v1``), with
  ``gateway.chat_path`` starting with ``/v1`` too: joined as is, that is
  ``/v1/v1/chat/completions``, which gateways answer 404 -- read as ``unknown_alias``. The path
  segments the base URL shares with the start of ``chat_path`` are counted once, so
  ``https://gw.example/v1`` and ``https://gw.example`` reach the same endpoint (also for
  ``/api/v1`` and for a pasted full ``.../v1/chat/completions``).

The URL itself never appears in a message: it often comes from a secret.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from depthgate.core.errors import ConfigError


def base_url(url: str, chat_path: str, *, source: str) -> str:
    """``url`` without a trailing slash and without the segments ``chat_path`` repeats.
    ``source`` names where the URL came from (the environment variable, or the config key)."""
    text = url.strip()
    parts = urlsplit(text)
    if "://" not in text:
        raise ConfigError(
            f"{source}: the gateway URL has no scheme; write it with http:// or https://, "
            "e.g. https://litellm.internal:4000 (the value is not shown: it may be a secret)"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{source}: the gateway URL must be http(s)://HOST[:PORT][/PATH], not a "
            f"{parts.scheme or 'scheme-less'} URL{'' if parts.hostname else ' without a host'}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{source}: the gateway URL has a query or fragment; give the base URL only "
            "(the endpoint's path is gateway.chat_path)"
        )
    base = [s for s in parts.path.split("/") if s]
    chat = [s for s in chat_path.split("/") if s]
    for k in range(min(len(base), len(chat)), 0, -1):
        if base[-k:] == chat[:k]:
            base = base[:-k]
            break
    path = "/" + "/".join(base) if base else ""
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
