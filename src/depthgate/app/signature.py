"""``X-Hub-Signature-256`` verification over the raw body, in constant time (threats T11).

Runs before anything parses the body. Two secrets are accepted while one is being rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Sequence
from enum import StrEnum

PREFIX = "sha256="
_HEX = frozenset(string.hexdigits)


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing"  # no X-Hub-Signature-256 header at all
    SHA1_ONLY = "sha1_only"  # only the legacy X-Hub-Signature (SHA-1) header
    MALFORMED = "malformed"  # not "sha256=" + 64 hex digits
    MISMATCH = "mismatch"  # well formed, made with another secret or over other bytes


# What the operator should check, per failure (Probot-style: the log line says the fix).
ADVICE = {
    Verdict.MISSING: (
        "no X-Hub-Signature-256 header: set a webhook secret in the GitHub App's settings, the "
        "same value as DEPTHGATE_WEBHOOK_SECRET"
    ),
    Verdict.SHA1_ONLY: (
        "only the SHA-1 X-Hub-Signature header was sent; depthgate verifies "
        "X-Hub-Signature-256 -- check that the sender is GitHub and that a secret is set"
    ),
    Verdict.MALFORMED: (
        "X-Hub-Signature-256 is not 'sha256=' followed by 64 hex digits; check that the sender "
        "is GitHub (a proxy may be rewriting headers)"
    ),
    Verdict.MISMATCH: (
        "X-Hub-Signature-256 does not match: check that DEPTHGATE_WEBHOOK_SECRET is the App's "
        "current webhook secret (while rotating, put the old one in "
        "DEPTHGATE_WEBHOOK_SECRET_PREVIOUS), and that no proxy re-encodes the body"
    ),
}


def sign(secret: str, body: bytes) -> str:
    """The header value GitHub sends for ``body``: ``sha256=<hex>``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(
    body: bytes, header: str | None, secrets: Sequence[str], *, sha1_header: str | None = None
) -> Verdict:
    if header is None:
        return Verdict.SHA1_ONLY if sha1_header is not None else Verdict.MISSING
    if not header.startswith(PREFIX):
        return Verdict.MALFORMED
    digest = header[len(PREFIX) :]
    if len(digest) != 64 or not set(digest) <= _HEX:
        return Verdict.MALFORMED
    given = header.lower().encode("ascii")
    ok = False
    for secret in secrets:
        # every secret is compared (no early exit), each compare in constant time
        ok |= hmac.compare_digest(sign(secret, body).encode("ascii"), given)
    return Verdict.OK if ok else Verdict.MISMATCH
