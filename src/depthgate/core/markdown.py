"""Writing untrusted text into Markdown: the one place that does it (design §10; threats.md T2,
T4, T5).

Paths and hunk headers come from the PR, titles, paths and reasons from the model, error texts
from the gateway and GitHub: any of them may be written to break out of where depthgate puts
it. Every piece of such text reaches Markdown -- the sticky summary, check runs, the job
summary, the handoff note -- through one of these helpers, which cannot be broken out of:

* :meth:`Escape.code` -- a code span whose fence is longer than any backtick run inside (padded
  with a space when the text starts or ends with a backtick, as CommonMark strips one space
  from each side), on one line, capped in length. Inside a code span nothing is a mention, a
  link, HTML or emphasis.
* :meth:`Escape.text` -- inline text: ASCII punctuation with Markdown meaning is backslash-
  escaped (so no HTML, entity, link, image, emphasis, table pipe or block start), and a word
  that GitHub would turn into a mention, an e-mail or a web link even when escaped (its
  autolinker runs on the rendered text) becomes a code span.
* :meth:`Escape.cell` and ``code(..., table=True)`` -- the same inside a table row, where GitHub
  splits cells at ``|`` before anything else, code spans included.

Every helper first removes bidi, zero-width and control characters and redacts secrets (the
exact values given to :class:`Escape` and every credential shape of
:mod:`depthgate.core.secretscan`), and folds newlines, so one value always stays one inline
piece. Model-written *prose* (comment bodies) is a different job: :mod:`depthgate.core.sanitize`
keeps its formatting and removes the rest.

The HTML that depthgate itself writes on purpose is ``<details>``, ``<summary>``, ``<sub>`` and
its hidden ``<!-- depthgate:... -->`` markers; nothing written through here adds any. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from depthgate.core.secretscan import redact

__all__ = ["CODE_LIMIT", "INVISIBLE", "OWN_HTML", "TEXT_LIMIT", "Escape"]

CODE_LIMIT = 300  # characters of one code span (a path, a hunk header, an alias)
TEXT_LIMIT = 1000  # characters of one piece of inline text (a reason, an error message)
OWN_HTML = ("details", "summary", "sub")  # the elements depthgate writes on purpose

_INVISIBLE_RANGES = (
    (0x00, 0x08),  # C0 controls except \t and \n ...
    (0x0B, 0x1F),
    (0x7F, 0x9F),  # ... DEL and C1 controls
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),  # Mongolian selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space/joiners, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides (Trojan Source)
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # bidi isolates, deprecated format characters
    (0x3164, 0x3164),
    (0xFEFF, 0xFEFF),  # zero-width no-break space / BOM
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),  # interlinear annotations
    (0xE0000, 0xE007F),  # tag characters ("ASCII smuggling" into LLMs)
)
# str.translate table: every invisible character to nothing
INVISIBLE: dict[int, None] = {
    cp: None for low, high in _INVISIBLE_RANGES for cp in range(low, high + 1)
}
_FOLD = str.maketrans({"\n": " ", "\t": " ", "\u2028": " ", "\u2029": " "})

# Punctuation that means something to CommonMark or GFM anywhere in a line: code, emphasis,
# strikethrough, links and images, HTML and autolinks, entities, table pipes, math. An "_"
# between two letters or digits is left alone: it can neither open nor close emphasis.
_ESCAPED = re.compile(r"[\\`*\[\]<>|~$&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What opens a block at the start of a line (list item, heading, quote, setext underline) --
# escaped where the text starts, in case it is written at the start of a line
_BLOCK_START = re.compile(r"[-+#>=/]|\d{1,9}(?=[.)])")
# Words GitHub links even when every character is escaped: its autolinker looks at the
# rendered text (e-mail addresses, and www./scheme:// after a "(" or "*"), and its mention
# filter too. Such a word is shown as code instead.
_LINKISH = re.compile(r"@|://|www\.", re.IGNORECASE)
_BACKTICKS = re.compile(r"`+")


def fence_for(text: str) -> str:
    """A code fence longer than any backtick run in ``text`` (at least three): the block's text
    cannot close it early."""
    return "`" * max(3, 1 + max((len(m.group()) for m in _BACKTICKS.finditer(text)), default=0))


@dataclass(frozen=True)
class Escape:
    """The helpers, bound to the exact secret values of this run (the gateway key, the GitHub
    token, the webhook secrets: whatever the entry point holds)."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Escape:
        return cls(tuple(dict.fromkeys(secrets)))

    def plain(self, text: object) -> str:
        """Text for a plain-text output (an annotation, a log line, a JSON value): invisible
        characters removed, secrets redacted; newlines kept."""
        return redact(str(text).translate(INVISIBLE), self.secrets)

    def code(self, text: object, *, limit: int = CODE_LIMIT, table: bool = False) -> str:
        """``text`` as one inline code span. ``table``: it stands in a table row."""
        value = self._one_line(text, limit)
        if table:
            # GitHub splits a row at every unescaped "|", inside code spans too, and turns "\|"
            # back into "|" there
            value = value.replace("|", "\\|")
        if not value.strip(" "):
            return "` `" if not value else f"`{value}`"
        fence = "`" * (1 + max((len(m.group()) for m in _BACKTICKS.finditer(value)), default=0))
        # CommonMark strips one space from each side when both are there, and a backtick next
        # to the fence would lengthen it: pad in both cases, so the text is shown as it is
        pad = value[0] == "`" or value[-1] == "`" or (value[0] == " " and value[-1] == " ")
        inner = f" {value} " if pad else value
        return f"{fence}{inner}{fence}"

    def text(self, text: object, *, limit: int = TEXT_LIMIT, table: bool = False) -> str:
        """``text`` as inline Markdown text that renders as exactly its characters (runs of
        whitespace as one space). ``table``: it stands in a table row."""
        words = " ".join(self._one_line(text, limit).split()).split(" ")
        out = []
        for word in words:
            if _LINKISH.search(word):
                out.append(self.code(word, limit=limit, table=table))
            else:
                out.append(_ESCAPED.sub(lambda m: "\\" + m.group(), word))
        joined = " ".join(out)
        start = _BLOCK_START.match(joined)
        if start is None:
            return joined
        # a digit run is escaped at its "." or ")"; "/" at a line start is a bot command
        cut = start.end()
        return f"{joined[:cut]}\\{joined[cut:]}" if joined[0].isdigit() else f"\\{joined}"

    def cell(self, text: object, *, limit: int = CODE_LIMIT) -> str:
        """``text`` as the content of a table cell (pipes escaped, like everything else)."""
        return self.text(text, limit=limit, table=True)

    def _one_line(self, text: object, limit: int) -> str:
        # invisible characters go before the secret scan: one inside a key would hide it
        value = self.plain(text).translate(_FOLD)
        if len(value) > limit:
            value = value[: max(0, limit - 1)] + "…"
        return value
