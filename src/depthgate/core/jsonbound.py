"""JSON from outside (a webhook body, a model's answer, a gateway's envelope), parsed with a depth
cap.

``json.loads`` recurses once per nesting level: ``[`` x 200,000 raises ``RecursionError``, and
a structure a few hundred levels deep parses but then breaks whatever walks or re-serialises it
later. Nothing depthgate reads legitimately nests more than a handful of levels, so the depth is
measured first (one pass over the text, strings skipped) and anything deeper than the cap is
refused before the parser sees it. Pure: text in, values out.

The pass runs on bytes, in C loops only (``in``, ``replace``, ``translate``, ``split``): a
24 KB webhook body is measured in about 27 us, a quarter of what ``json.loads`` takes to parse
it (the regular expressions before took about 290 us, on the webhook's event loop: issue #10,
bench/webhook_load.py).
"""

from __future__ import annotations

import itertools
import json
import operator
from typing import Any

MAX_JSON_DEPTH = 64

_MARKS = b'"[]{}'
_NOT_MARKS = bytes(sorted(set(range(256)) - set(_MARKS)))
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


class JsonTooDeep(ValueError):
    """The text nests arrays/objects deeper than the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit


def _utf8(text: str | bytes) -> bytes:
    """The text as UTF-8 bytes, decoded from bytes as ``json.loads`` does (UTF-8 with or without
    a BOM, UTF-16, UTF-32). Only ASCII matters to the depth: no byte of a multi-byte UTF-8
    sequence is a quote, a backslash or a bracket."""
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    encoding = json.detect_encoding(text)
    if encoding in ("utf-8", "utf-8-sig"):
        return text
    return text.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")


def _brackets(data: bytes) -> bytes:
    """The brackets of ``data`` outside strings, in order: each opener as 2, each closer as 0."""
    if b"\\" in data:
        # Escapes first: an escaped backslash (pairs taken from the left, as the parser reads
        # them), then an escaped quote, is text; no backslash left escapes a quote.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = data.translate(None, _NOT_MARKS)  # quotes and brackets only
    # Quotes now alternate: open, close. Two adjacent ones enclose no bracket (an empty string,
    # or the gap between two strings): dropping them keeps the parity of every other quote.
    marks = marks.replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[::2])  # even parts are outside strings
    return marks.translate(_STEP)


def too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (brackets inside strings do
    not count). Text that is not JSON still gets an answer: the parser says what is wrong."""
    brackets = _brackets(_utf8(text))
    if brackets.count(2) <= limit:
        return False  # cannot nest deeper than the number of openers
    # the running sum of (byte - 1) is the depth, computed by C loops (map, accumulate, max)
    # rather than a Python loop per bracket
    steps = map(operator.sub, brackets, itertools.repeat(1))
    return max(itertools.accumulate(steps), default=0) > limit


def loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting past ``max_depth`` with :class:`JsonTooDeep`;
    other failures raise ``json.JSONDecodeError`` / ``UnicodeDecodeError`` as ``json.loads``
    does."""
    if too_deep(text, max_depth):
        raise JsonTooDeep(max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the depth scan refuses these first
        raise JsonTooDeep(max_depth) from None
