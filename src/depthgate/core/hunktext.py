"""A hunk as a task shows it to the model, and what that costs in tokens (design §9).

A hunk is its header and one line per diff line, ``R12 +text`` (side, number, sign, text); its
size is estimated as ``ceil(UTF-8 bytes of header and texts / 2.5) + 4 tokens a line``, high-
entropy runs at 1.4 bytes a token (:mod:`depthgate.core.prompting`). A hunk larger than what a
task can hold is split here on line boundaries into parts that each fit. Pure.
"""

from __future__ import annotations

import math

from depthgate.core.context import Site
from depthgate.core.diff import Hunk, Line, LineKind
from depthgate.core.prompting import BYTES_PER_TOKEN, dense_extra

TOKENS_PER_LINE = 4  # the "R12 +" prefix and the newline


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "replace")) / BYTES_PER_TOKEN)


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def line_tokens(line: Line) -> float:
    return (utf8_len(line.text) + 1) / BYTES_PER_TOKEN + TOKENS_PER_LINE + dense_extra(line.text)


def hunk_tokens(hunk: Hunk) -> int:
    text = "\n".join(line.text for line in hunk.lines)
    size = utf8_len(hunk.path) + 1 + utf8_len(hunk.header) + 1 + utf8_len(text)
    dense = dense_extra(text)
    return math.ceil(size / BYTES_PER_TOKEN + dense) + TOKENS_PER_LINE * len(hunk.lines)


def render_line(line: Line) -> str:
    """One diff line as the model sees it: ``R12 +added``, ``R13  context``, ``L7 -deleted``.

    The side and number are exactly what a finding must quote back to be placed.
    """
    if line.kind is LineKind.DELETED:
        return f"L{line.old_no} -{line.text}"
    sign = "+" if line.kind is LineKind.ADDED else " "
    return f"R{line.new_no} {sign}{line.text}"


def render_hunk(hunk: Hunk, site: Site | None = None) -> str:
    """The hunk with its header; with a ``site``, git's ``@@`` section text (which is sometimes
    the wrong function) gives way to the language and the real enclosing definition."""
    if site is None:
        head = f"{hunk.path} {hunk.header}"
    else:
        numbers = f"@@ -{hunk.old_start},{hunk.old_lines} +{hunk.new_start},{hunk.new_lines} @@"
        head = f"{hunk.path} {numbers} [{site.describe()}]"
    return "\n".join([head, *map(render_line, hunk.lines)]) + "\n"


def split_hunk(hunk: Hunk, budget: int, *, reserved: int = 0) -> tuple[list[Hunk], str | None]:
    """``hunk`` cut on line boundaries into parts that each cost at most ``budget`` tokens
    with ``reserved`` more beside each (the site line), in order; or no parts and why, when one
    line alone does not fit."""
    groups: list[list[Line]] = [[]]
    size = 0.0
    # what hunk_tokens() will charge each part, less the rounding up it adds at the end
    limit = (
        budget - reserved - (utf8_len(hunk.path) + utf8_len(hunk.header) + 2) / BYTES_PER_TOKEN - 1
    )
    for line in hunk.lines:
        cost = line_tokens(line)
        if cost > limit:
            return [], (
                f"a line of {utf8_len(line.text)} bytes does not fit the alias's input budget "
                f"of {budget} tokens"
            )
        if size + cost > limit and groups[-1]:
            groups.append([])
            size = 0.0
        groups[-1].append(line)
        size += cost
    parts = []
    old_cursor, new_cursor = hunk.old_start, hunk.new_start
    for n, lines in enumerate(groups, 1):
        old_n = sum(1 for ln in lines if ln.old_no is not None)
        new_n = sum(1 for ln in lines if ln.new_no is not None)
        parts.append(
            Hunk(
                path=hunk.path,
                index=hunk.index,
                old_start=next((ln.old_no for ln in lines if ln.old_no is not None), old_cursor),
                old_lines=old_n,
                new_start=next((ln.new_no for ln in lines if ln.new_no is not None), new_cursor),
                new_lines=new_n,
                section=hunk.section,
                lines=tuple(lines),
                old_missing_newline=hunk.old_missing_newline and n == len(groups),
                new_missing_newline=hunk.new_missing_newline and n == len(groups),
            )
        )
        old_cursor += old_n
        new_cursor += new_n
    return parts, None
