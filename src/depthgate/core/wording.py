"""Small pieces of the words depthgate prints, shared so every surface says it the same way."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """``1 hunk``, ``2 hunks``, ``0 comments``, ``1 retry``, ``3 retries``: a count, its noun."""
    if n == 1:
        return f"{n} {word}"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return f"{n} {word[:-1]}ies"
    return f"{n} {word}s"
