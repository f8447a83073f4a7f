"""JSON from outside (a model's answer, a gateway's envelope), parsed with a depth cap.

``json.loads`` recurses once per nesting level: ``[`` x 200,000 raises ``RecursionError``, and
a structure a few hundred levels deep parses but then breaks whatever walks or re-serialises it
later. Nothing depthgate reads legitimately nests more than a handful of levels, so the depth is
measured first (one pass over the text, strings skipped) and anything deeper than the cap is
refused before the parser sees it. Pure: text in, values out.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from typing import Any

MAX_JSON_DEPTH = 64

# A JSON string, escapes included (the unrolled loop: one linear pass however long it is):
# brackets inside strings are text, not nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})


class JsonTooDeep(ValueError):
    """The text nests arrays/objects deeper than the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (brackets inside strings do
    not count). Text that is not JSON still gets an answer: the parser says what is wrong."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than the number of openers
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text)).translate(_STEP).encode("ascii")
    # each byte is 2 (an opener) or 0 (a closer): the running sum of (byte - 1) is the depth,
    # computed by C loops (map, accumulate, max) rather than a Python loop per bracket
    steps = map(operator.sub, brackets, itertools.repeat(1))
    return max(itertools.accumulate(steps), default=0) > limit


def loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting past ``max_depth`` with :class:`JsonTooDeep`;
    other failures raise ``json.JSONDecodeError`` / ``UnicodeDecodeError`` as ``json.loads``
    does."""
    if isinstance(text, bytes):
        # as json.loads decodes bytes: UTF-8 (a BOM allowed), UTF-16 or UTF-32
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if too_deep(text, max_depth):
        raise JsonTooDeep(max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the depth scan refuses these first
        raise JsonTooDeep(max_depth) from None
