"""Gateway profiles: where each gateway puts the resolved model, how it shows a fallback, and how
its errors map to depthgate's error classes (docs/platform.md, gateways).

Real gateways disagree: LiteLLM answers 400 both to an unknown alias and (without a database) to
a wrong key, and tells them apart only by ``error.type``; CometAPI answers 503 to an unknown
model; LiteLLM echoes the alias as ``model`` and names the deployment in a header, while
OpenRouter returns the model that ran in the body. Every such difference lives here, nowhere
else. Pure: status, headers and body in, a decision out.
"""

from __future__ import annotations

import email.utils
import fnmatch
import math
import re
from collections.abc import Mapping
from typing import Any

from depthgate.core.models import ErrorClass
from depthgate.core.routes import Profile

_UNKNOWN_MODEL_TEXT = re.compile(
    r"(?i)invalid model name|not a valid model id|model[_ ]not[_ ]found|no available channel|"
    r"model .{0,80}(does not exist|not found|is not supported|unknown)|unknown model|"
    r"no such model|invalid model"
)
_CONTEXT_TEXT = re.compile(
    r"(?i)context[_ ]length|maximum context|context window|too many tokens|prompt is too long|"
    r"input is too long|reduce the length"
)
_AUTH_TYPES = {"auth_error", "authentication_error", "invalid_api_key", "no_db_connection"}
_DATED = re.compile(r"^(?P<base>.+?)(-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8})$")


def error_payload(payload: Any) -> tuple[str, str, str]:
    """``(type, code, message)`` of an OpenAI-style ``{"error": {...}}`` body, or empty strings.

    Also reads Cloudflare's envelope ``{"success": false, "errors": [{"code", "message"}]}``.
    """
    if not isinstance(payload, Mapping):
        return "", "", ""
    err = payload.get("error")
    if isinstance(err, Mapping):
        return (
            str(err.get("type") or ""),
            str(err.get("code") or ""),
            str(err.get("message") or ""),
        )
    if isinstance(err, str):
        return "", "", err
    errors = payload.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        return "", str(first.get("code") or ""), str(first.get("message") or "")
    return "", "", ""


def classify_error(profile: Profile, status: int, payload: Any, text: str) -> ErrorClass:
    """The error class of a non-2xx answer (design §4)."""
    etype, code, message = error_payload(payload)
    haystack = " ".join((etype, code, message)) or text[:500]
    if status in (401, 403) or etype in _AUTH_TYPES or code == "invalid_api_key":
        return ErrorClass.AUTH
    if code == "model_not_found" or (
        status in (400, 404, 503) and _UNKNOWN_MODEL_TEXT.search(haystack)
    ):
        return ErrorClass.UNKNOWN_ALIAS
    if profile is Profile.CLOUDFLARE and status == 404:
        return ErrorClass.UNKNOWN_ALIAS  # an unknown route
    if status == 404 and profile in (Profile.OPENAI, Profile.GENERIC):
        return ErrorClass.UNKNOWN_ALIAS
    if code == "context_length_exceeded" or (
        status in (400, 413) and _CONTEXT_TEXT.search(haystack)
    ):
        return ErrorClass.CONTEXT_LENGTH
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status in (408, 504):
        return ErrorClass.TIMEOUT
    if status == 409 or status >= 500:
        return ErrorClass.SERVER
    if status == 404:
        return ErrorClass.UNKNOWN_ALIAS
    return ErrorClass.BAD_REQUEST


def resolved_model(profile: Profile, headers: Mapping[str, str], payload: Any) -> str | None:
    """The model that actually served the request, read where the profile says it is."""
    lower = {k.lower(): v for k, v in headers.items()}
    header = {
        Profile.LITELLM: "x-litellm-model-name",
        Profile.CLOUDFLARE: "cf-aig-model",
    }.get(profile)
    if header and lower.get(header):
        return lower[header]
    if isinstance(payload, Mapping) and isinstance(payload.get("model"), str):
        return str(payload["model"])
    return None


def gateway_fallback(profile: Profile, headers: Mapping[str, str]) -> bool:
    """Whether the gateway reports that one of its own fallbacks served the request."""
    lower = {k.lower(): v for k, v in headers.items()}
    if profile is Profile.LITELLM:
        return lower.get("x-litellm-attempted-fallbacks", "0") not in ("", "0")
    if profile is Profile.PORTKEY:
        return lower.get("x-portkey-last-used-option-index", "0") not in ("", "0")
    if profile is Profile.CLOUDFLARE:
        return lower.get("cf-aig-step", "0") not in ("", "0")
    return False


def request_id(headers: Mapping[str, str], payload: Any) -> str | None:
    lower = {k.lower(): v for k, v in headers.items()}
    for name in (
        "x-request-id",
        "x-litellm-call-id",
        "cf-aig-log-id",
        "cf-ray",
        "x-portkey-trace-id",
    ):
        if lower.get(name):
            return lower[name][:120]
    if isinstance(payload, Mapping) and isinstance(payload.get("id"), str):
        return str(payload["id"])[:120]
    return None


# A wait no client would sit through. A Retry-After that is not a finite, non-negative number of
# seconds below this (``inf``, ``nan``, ``1e400``, ``-5``, a date in the year 9999) says
# nothing usable about when to come back: it is read as "too long", so the call hands off, and
# the figure recorded (handoff JSON included) is this finite ceiling, never Infinity/NaN.
RETRY_AFTER_CEILING_S = 86_400.0


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date),
    within ``[0, RETRY_AFTER_CEILING_S]``: an unusable number counts as the ceiling.

    LiteLLM passes an upstream's value on as ``llm_provider-retry-after``; it is read too.
    ``now`` is the current epoch time (the caller's clock).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms:
        try:
            return _bounded_wait(float(ms) / 1000)
        except ValueError:
            pass
    for name in ("retry-after", "llm_provider-retry-after"):
        value = lower.get(name)
        if not value:
            continue
        try:
            return _bounded_wait(float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        # a date in the past means "now"; only a number of seconds can be negative by mistake
        return _bounded_wait(max(0.0, when.timestamp() - now))
    return None


def _bounded_wait(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0 or seconds > RETRY_AFTER_CEILING_S:
        return RETRY_AFTER_CEILING_S
    return seconds


def model_matches(locked: str, resolved: str) -> bool:
    """``locked`` (a name or glob) against what the gateway says served.

    A provider prefix (``openai/gpt-4.1-mini``) and a dated snapshot suffix
    (``gpt-4.1-mini-2025-04-14``) both match ``gpt-4.1-mini``.
    """
    candidates = {resolved, resolved.rsplit("/", 1)[-1]}
    for c in list(candidates):
        m = _DATED.match(c)
        if m:
            candidates.add(m.group("base"))
    return any(c == locked or fnmatch.fnmatchcase(c, locked) for c in candidates)
