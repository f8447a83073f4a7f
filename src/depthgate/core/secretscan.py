"""Secrets: their shapes and their redaction -- the one owner of both (issue #12 item 3).

Everyone who needs to know what a credential looks like asks here: the config validator (no
keys in gateway-routes.yaml), the gateway client (no key-shaped error text), the outbound
sanitizer and the Markdown helpers (nothing posted holds a key), and every machine output and
log (``redact``, ``redact_data``).

Two kinds of secret are removed:

* **shapes** of well-known credentials (GitHub, OpenAI-style, AWS, Google, Slack, bearer
  values, PEM private key blocks, credentials inside a URL), wherever they are, also when glued
  to a word (``0ghp_...``);
* **exact values** we hold (the gateway key, the GitHub token, the webhook secrets, ...), raw
  and URL-encoded. Values under :data:`MIN_SECRET_LEN` characters are ignored: replacing every
  occurrence of a short word would mangle prose and tell an attacker the value.

Pure: regular expressions and functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 8
MAX_PASSES = 8  # a replacement can complete a new match ("user:[REDACTED]@"); this bounds it

# Detection: what the config validator refuses. Kept a little conservative (an "AKIA..." run
# must end where the id ends) so that ordinary config text is never refused.
SECRET_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # No leading \b on the token shapes: a token glued to a word ("0ghp_...") is still a token.
    ("GitHub token", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    (
        "OpenAI-style API key",
        re.compile(r"(?<![A-Za-z])sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"),
    ),
    ("AWS access key id", re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])")),
    ("Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("Slack token", re.compile(r"xox[abpors]-[A-Za-z0-9-]{10,}")),
    ("private key block", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("bearer credential", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")),
    # The scheme is bounded and must start at a non-scheme character: without that, a long run
    # of scheme characters makes the search quadratic.
    (
        "credentials in a URL",
        re.compile(
            r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\s:@]{1,256}:[^/\s@]{1,256}@"
        ),
    ),
)

# Redaction: wider than detection, because a false positive costs a word of prose while a miss
# posts a key. These variants drop the guards that detection keeps.
_REDACT_EXTRA: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("OpenAI-style API key", re.compile(r"sk-(?:proj|ant|live|test)-[A-Za-z0-9_-]{16,}")),
    ("AWS access key id", re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}")),
    # matches wherever the detection shape matches, also after a scheme character, and stays
    # linear: the scheme part is bounded and the user part cannot contain ':' or '@'
    ("credentials in a URL", re.compile(r"[A-Za-z0-9+.-]{0,32}://[^/\s:@]+:[^/\s@]+@")),
)
REDACTION_SHAPES = (*SECRET_SHAPES, *_REDACT_EXTRA)

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
# when the END line is missing: the base64 and header lines that follow BEGIN
_PEM_BODY = re.compile(
    r"(?:(?:[ \t]*\n)+[ \t]*(?:[A-Za-z0-9+/=]{8,}|(?:Proc-Type|DEK-Info):[^\n]*)[ \t]*(?=\n|$))*"
)
_PEM_WINDOW = 20_000

Span = tuple[int, int, str]  # start, end, the kind of secret (never the value)


def find_secret_shape(text: str) -> str | None:
    """The name of the first credential shape in ``text``, or None."""
    for name, pattern in SECRET_SHAPES:
        if pattern.search(text):
            return name
    return None


@lru_cache(maxsize=64)
def needles(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """The forms in which each exact secret value is looked for: raw and URL-encoded (upper and
    lower case hex), longest first so that a longer form wins over its own prefix."""
    found: dict[str, None] = {}
    for value in secrets:
        if len(value) < MIN_SECRET_LEN or value in REDACTED:
            continue  # too short to redact without mangling prose; or part of our marker
        for form in (value, quote(value, safe=""), quote_plus(value, safe="")):
            found[form] = None
            found[re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), form)] = None
    return tuple(sorted(found, key=len, reverse=True))


@lru_cache(maxsize=64)
def _needle_pattern(forms: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(re.escape, forms))) if forms else None


def secret_spans(text: str, forms: tuple[str, ...] = ()) -> list[Span]:
    """Every secret in ``text``: PEM blocks, shapes, and the exact values in ``forms``
    (:func:`needles`). Spans may overlap; :func:`replace_spans` merges them."""
    found: list[Span] = [(s, e, "private key block") for s, e in _pem_blocks(text)]
    for name, pattern in REDACTION_SHAPES:
        found += [(m.start(), m.end(), name) for m in pattern.finditer(text)]
    needle = _needle_pattern(forms)
    if needle is not None:
        found += [(m.start(), m.end(), "configured secret") for m in needle.finditer(text)]
    return [(s, e, n) for s, e, n in found if e > s]


def replace_spans(text: str, spans: Iterable[Span], replacement: str = REDACTED) -> str:
    merged: list[list[int]] = []
    for start, end, _name in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces: list[str] = []
    last = 0
    for start, end in merged:
        pieces += [text[last:start], replacement]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def redact_spans(
    text: str, find: Callable[[str], list[Span]], replacement: str = REDACTED
) -> tuple[str, list[str]]:
    """``text`` with every span ``find`` reports replaced, until none is left; and the kinds
    that were found. ``find`` lets a caller look at its own view of the text (the sanitizer
    also looks through Markdown backslash escapes)."""
    kinds: list[str] = []
    for _ in range(MAX_PASSES):
        spans = find(text)
        if not spans:
            break
        kinds.extend(name for _s, _e, name in spans)
        text = replace_spans(text, spans, replacement)
    return text, kinds


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret shape and every exact value of ``secrets`` replaced by
    ``[REDACTED]``. For plain text (JSON values, logs, annotations); Markdown goes through
    :mod:`depthgate.core.markdown` or :mod:`depthgate.core.sanitize`, which call this."""
    forms = needles(tuple(secrets))
    return redact_spans(text, lambda t: secret_spans(t, forms))[0]


def redact_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of JSON-able ``value`` (dicts, lists, strings, numbers) with every string --
    keys included -- redacted. What goes to ``--format json`` and the handoff file."""
    frozen = tuple(secrets)
    return _walk(value, lambda s: redact(s, frozen))


def _walk(value: Any, fix: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, Mapping):
        return {fix(k) if isinstance(k, str) else k: _walk(v, fix) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, fix) for v in value]
    return value


def _pem_blocks(text: str) -> list[tuple[int, int]]:
    """Whole PEM private key blocks: BEGIN through END, or through the base64 lines."""
    blocks: list[tuple[int, int]] = []
    for begin in _PEM_BEGIN.finditer(text):
        if blocks and begin.start() < blocks[-1][1]:
            continue
        following = text.find("-----BEGIN", begin.end())
        window = min(len(text), begin.end() + _PEM_WINDOW)
        window = window if following == -1 else min(window, following)
        end = _PEM_END.search(text, begin.end(), window)
        if end is None:
            end = _PEM_BODY.match(text, begin.end())
        assert end is not None  # _PEM_BODY matches the empty string
        blocks.append((begin.start(), end.end()))
    return blocks
