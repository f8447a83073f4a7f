"""Make model-written Markdown safe to post on GitHub (threats.md T2, T4, T5, T6).

Everything the model writes is untrusted: a prompt injection in the PR can make it write
anything. Before any of it is posted, ``sanitize`` rewrites it so that

* **T2, secrets**: every credential shape of ``depthgate.core.secretscan`` (plus whole PEM private
  key blocks) and every exact secret value we hold, raw or URL-encoded, becomes ``[REDACTED]``,
  also inside code and also when Markdown backslash escapes split it (``ghp\\_…``);
* **T4, mentions and bot commands**: ``@user``, ``@org/team`` (also ``\\@user``) and a
  ``/command`` at the start of a line are wrapped in code spans, where GitHub neither notifies
  nor do bots read commands; so is the domain of an e-mail address (GitHub would link the
  address as mailto:, even when escaped);
* **T5, beacons, hidden text, links, Trojan Source**: images become ``[image removed]``; HTML
  comments and tags disappear (the text between paired tags stays); a link survives only if
  it is ``https`` and points into ``policy.repo`` on github.com or to an allowlisted host; bare
  URLs elsewhere become ``(link removed)``; bidi controls, zero-width and other invisible
  characters are deleted; entities that would decode to such characters are neutralised;
  math (``$``) and diagram fences (mermaid, math, geojson, topojson, stl), which GitHub
  renders instead of showing as text, are made inert;
* **T6, size**: the UTF-8 size is capped, with a note, and open code fences are closed so our
  own footer is never swallowed.

How. The text is split into fenced code blocks and prose, the way GitHub's CommonMark parser
sees block structure. Code is kept verbatim (it renders as text); only the prose is rewritten,
by a left-to-right scanner that recognises escapes, code spans, HTML, links, images, URLs,
mentions and entities. Whatever the scanner cannot prove harmless it escapes (``\\[``,
``\\```, ``&lt;``), so the output is in a *canonical form* that leaves GitHub no room to parse
it differently from us: in prose every unescaped ``[`` opens one of our allowlisted links,
every backtick belongs to a code span that closes on the same line, and no ``<`` can open HTML;
every code fence starts in column 0 and is closed.

``invariant_violations`` runs the same scanner and reports everything it would change, so a
string is clean exactly when it is already in canonical form. ``sanitize`` rewrites until
nothing changes, then checks: if the result were still not clean it would return a fixed
notice instead. Hence ``invariant_violations(sanitize(x, p), p) == []`` for every ``x``, and
``sanitize`` is idempotent.

Pure: no I/O, no environment, no clock.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from depthgate.core.markdown import INVISIBLE as _INVISIBLE
from depthgate.core.secretscan import REDACTED, Span, needles, redact_spans, secret_spans

__all__ = [
    "IMAGE_REMOVED",
    "LINK_REMOVED",
    "REDACTED",
    "TRUNCATION_NOTE",
    "SanitizePolicy",
    "invariant_violations",
    "sanitize",
]

IMAGE_REMOVED = "[image removed]"
LINK_REMOVED = "(link removed)"
TRUNCATION_NOTE = "\n\n… (truncated by depthgate)"
FALLBACK = "(depthgate removed this text: it could not be made safe to post)"

MAX_PASSES = 8  # rewriting converges in 2-3 passes; this only bounds pathological input
MAX_LABEL = 1000  # link text longer than this on one line is not treated as a link
SCAN_BUDGET = 200_000  # bracket-matching steps per pass, so "[[[[..." stays linear


@dataclass(frozen=True)
class SanitizePolicy:
    """What may survive: links into ``repo`` or to ``allowed_hosts``; never ``secrets``."""

    repo: str | None = None  # "owner/name"; links into https://github.com/<repo>/... survive
    allowed_hosts: tuple[str, ...] = ()  # extra hosts whose https links survive (exact match)
    secrets: tuple[str, ...] = ()  # exact values to redact (values under 8 chars are ignored)
    max_bytes: int = 65_536  # UTF-8 byte cap for the whole result


def sanitize(text: str, policy: SanitizePolicy) -> str:
    """``text`` rewritten so that it is safe to post on GitHub (see the module docstring)."""
    if policy.max_bytes <= 0:
        return ""
    clean, _ = _redact(text.translate(_INVISIBLE), _needles(policy))
    truncated = _size(clean) > policy.max_bytes
    if truncated:  # bound the work; secrets were redacted before the cut
        clean = _cut(clean, policy.max_bytes)
    result = _settle(clean, policy)
    if truncated or _size(result) > policy.max_bytes:
        result = _fit(result, policy)
    if invariant_violations(result, policy):
        return _fallback(policy)
    return result


def invariant_violations(text: str, policy: SanitizePolicy) -> list[str]:
    """The problems that make ``text`` unsafe to post; empty when it is already sanitized."""
    problems: list[str] = []
    size = _size(text)
    if size > policy.max_bytes:
        problems.append(f"{size} bytes, over the {policy.max_bytes}-byte cap")
    rewritten, reasons = _analyze(text, policy)
    problems.extend(dict.fromkeys(reasons))
    if rewritten != text and not reasons:  # defensive: every rewrite names its reason
        problems.append("not in sanitized form")
    return problems


# --------------------------------------------------------------------------- the whole text


def _settle(text: str, policy: SanitizePolicy) -> str:
    """Rewrite until nothing changes (removing a tag can join text into something new)."""
    for _ in range(MAX_PASSES):
        rewritten, _reasons = _analyze(text, policy)
        if rewritten == text:
            break
        text = rewritten
    return text


def _analyze(text: str, policy: SanitizePolicy) -> tuple[str, list[str]]:
    """One rewriting pass, and the reason for every change it made."""
    reasons: list[str] = []
    clean = text.translate(_INVISIBLE)
    if clean != text:
        reasons.append("bidi, zero-width or control characters")
    clean, names = _redact(clean, _needles(policy))
    if names:  # never quote the secret itself
        reasons.append("secret: " + ", ".join(dict.fromkeys(names)))
    lines = _segment(clean, reasons)
    prose = _Prose(policy, table=any(not code and _is_table_delimiter(t) for code, t in lines))
    out_lines: list[str] = []
    for code, line in lines:
        if code:
            out_lines.append(line)
        elif _DEFINITION.match(line):
            reasons.append(f"link reference definition {_show(line)}")
        else:
            out = _Out()
            prose.rewrite(line, out, link_mode=False)
            reasons.extend(out.reasons)
            out_lines.append(out.text())
    return "\n".join(out_lines), reasons


def _fit(text: str, policy: SanitizePolicy) -> str:
    """``text`` cut to the byte cap, with the truncation note and every fence closed."""
    budget = policy.max_bytes - _size(TRUNCATION_NOTE)
    while budget > 0:
        body = _settle(_cut(text, budget), policy)
        candidate = body + TRUNCATION_NOTE if body.strip() else TRUNCATION_NOTE.lstrip("\n")
        candidate = _settle(candidate, policy)
        size = _size(candidate)
        if size <= policy.max_bytes:
            return candidate
        budget -= size - policy.max_bytes
    return _cut(TRUNCATION_NOTE.lstrip("\n"), policy.max_bytes)


def _fallback(policy: SanitizePolicy) -> str:
    notice = _cut(FALLBACK, policy.max_bytes)
    return "" if invariant_violations(notice, policy) else notice


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int) -> str:
    """At most ``max_bytes`` of ``text``, cut at a character (preferably a line) boundary."""
    if _size(text) <= max_bytes:
        return text
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    newline = cut.rfind("\n")
    return cut[:newline] if newline >= len(cut) // 2 else cut


# ------------------------------------------------------------------------------ secrets
# Shapes, exact values and the replacement belong to depthgate.core.secretscan; what is
# Markdown-specific stays here: secrets are also looked for through backslash escapes.

_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _needles(policy: SanitizePolicy) -> tuple[str, ...]:
    # an invisible character inside a configured value would otherwise hide it from the scan
    return needles(tuple(secret.translate(_INVISIBLE) for secret in policy.secrets))


def _redact(text: str, forms: tuple[str, ...]) -> tuple[str, list[str]]:
    """``text`` with every secret replaced by ``[REDACTED]``, and the kinds that were found."""
    return redact_spans(text, lambda t: _secret_spans(t, forms))


def _secret_spans(text: str, forms: tuple[str, ...]) -> list[Span]:
    """Secrets in ``text`` and in its rendering with backslash escapes removed."""
    spans = secret_spans(text, forms)
    if "\\" in text:
        view, index = _unescaped(text)
        spans += [(index[s], index[e - 1] + 1, n) for s, e, n in secret_spans(view, forms)]
    return spans


def _unescaped(text: str) -> tuple[str, list[int]]:
    """``text`` as rendered without Markdown backslash escapes, and each char's raw index."""
    chars: list[str] = []
    index: list[int] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _PUNCT:
            i += 1
        chars.append(text[i])
        index.append(i)
        i += 1
    return "".join(chars), index


# ------------------------------------------------------------------------ block structure

_OPENER = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_CLOSER = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_RENDERED_FENCES = frozenset({"math", "mermaid", "geojson", "topojson", "stl"})
_DEFINITION = re.compile(r" {0,3}\[[^\]]{1,999}\]:")
_TABLE_DELIMITER = re.compile(r"[ \t>*+\d.)|:-]*")
_COMMENT_SCAN = re.compile(r"\\[\s\S]|`+|<!--")
_BACKTICKS = re.compile(r"`+")


def _segment(text: str, reasons: list[str]) -> list[tuple[bool, str]]:
    """Each line, marked code (fenced block) or prose; HTML comments removed, fences fixed.

    A fence opener is moved to column 0, where it cannot belong to a list item or quote that
    ends before its closer. An HTML comment hides everything up to ``-->``, fences included,
    as on GitHub; an unterminated one hides the rest of the text, so it is dropped.
    """
    lines = text.split("\n")
    out: list[tuple[bool, str]] = []
    fence = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if fence:
            out.append((True, line))
            closer = _CLOSER.fullmatch(line)
            if closer and closer[1][0] == fence[0] and len(closer[1]) >= len(fence):
                fence = ""
            continue
        opener = _OPENER.fullmatch(line)
        if opener and not (opener[2][0] == "`" and "`" in opener[3]):
            fence = opener[2]
            if opener[1]:
                reasons.append("indented code fence")
            out.append((True, fence + _fence_info(opener[3], reasons)))
            continue
        start = _comment_start(line, 0)
        while start is not None:
            reasons.append("HTML comment (<!--)")
            head, tail = line[:start], line[start + 2 :]  # from +2: "<!-->" is a comment
            end = tail.find("-->")
            while end == -1 and i < len(lines):
                tail = lines[i]
                i += 1
                end = tail.find("-->")
            if end == -1:
                out.append((False, head))
                return out
            line = head + tail[end + 3 :]
            start = _comment_start(line, len(head))
        out.append((False, line))
    if fence:
        reasons.append("unclosed code fence")
        out.append((True, fence))
    return out


def _fence_info(info: str, reasons: list[str]) -> str:
    words = info.split()
    if words and words[0].lower() in _RENDERED_FENCES:
        reasons.append(f"rendered code fence ({words[0]})")
        return "text"
    return info


def _comment_start(line: str, pos: int) -> int | None:
    """Where ``<!--`` opens a comment in ``line`` (not escaped, not inside a code span)."""
    while (m := _COMMENT_SCAN.search(line, pos)) is not None:
        found = m.group()
        if found == "<!--":
            return m.start()
        if found[0] == "`":
            end = _span_end(line, m.start(), len(found), table=False)
            pos = m.end() if end is None else end
        else:
            pos = m.end()
    return None


def _span_end(line: str, start: int, run: int, *, table: bool) -> int | None:
    """End of the code span opened by ``run`` backticks at ``start``, closed on this line.

    In a document with a table, GitHub splits table rows at ``|`` before it finds code spans,
    so a span containing ``|`` is not trusted there.
    """
    for m in _BACKTICKS.finditer(line, start + run):
        if len(m.group()) == run:
            if table and "|" in line[start : m.end()]:
                return None
            return m.end()
    return None


def _is_table_delimiter(line: str) -> bool:
    return "|" in line and "-" in line and _TABLE_DELIMITER.fullmatch(line) is not None


# --------------------------------------------------------------------------------- links

_SAFE_URL = re.compile(r"https://[A-Za-z0-9.-]+(?:[/?#][A-Za-z0-9\-._~/?#%+=&,:]*)?", re.I)
_BAD_ENCODING = re.compile(r"%(?:2e|2f|5c)", re.I)


def _url_allowed(url: str, policy: SanitizePolicy) -> bool:
    """An https URL to an allowlisted host or into ``policy.repo`` on github.com."""
    if not _SAFE_URL.fullmatch(url) or _BAD_ENCODING.search(url):
        return False
    parts = urlsplit(url)
    if any(segment in (".", "..") for segment in parts.path.split("/")) or "//" in parts.path:
        return False
    host = parts.netloc.lower()
    if host in {h.lower() for h in policy.allowed_hosts}:
        return True
    if host != "github.com" or not policy.repo:
        return False
    repo = "/" + policy.repo.strip("/").lower()
    path = parts.path.lower()
    return path == repo or path.startswith(repo + "/")


def _parse_destination(line: str, i: int) -> tuple[str, int] | None:
    """For ``line[i] == "("``: an inline link's destination and the index after its ``)``."""
    n = len(line)
    k = _skip_blanks(line, i + 1)
    if k < n and line[k] == "<":
        end = line.find(">", k + 1)
        if end == -1 or "<" in line[k + 1 : end]:
            return None
        dest, k = line[k + 1 : end], end + 1
    else:
        start, depth = k, 0
        while k < n and line[k] not in " \t":
            c = line[k]
            if c == "\\" and k + 1 < n and line[k + 1] in _PUNCT:
                k += 2
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            k += 1
        if depth:
            return None
        dest = line[start:k]
    k = _skip_blanks(line, k)
    if k < n and line[k] in "\"'(":  # a title, dropped when the link is re-emitted
        close = ")" if line[k] == "(" else line[k]
        k += 1
        while k < n and line[k] != close:
            k += 2 if line[k] == "\\" else 1
        if k >= n:
            return None
        k = _skip_blanks(line, k + 1)
    if k < n and line[k] == ")":
        return dest, k + 1
    return None


def _skip_blanks(line: str, k: int) -> int:
    while k < len(line) and line[k] in " \t":
        k += 1
    return k


# ---------------------------------------------------------------------------------- prose

_PLAIN = re.compile(r"[^\\`<!\[\]@&/~$hHfFwW]+")
_LABEL_SCAN = re.compile(r"[\\`\[\]]")
_REFERENCE = re.compile(r"\[(?:[^\\\[\]]|\\.){0,999}\]")
_MENTION = re.compile(r"@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][A-Za-z0-9_-]*)?")
_DOMAIN = re.compile(r"@[A-Za-z0-9](?:[A-Za-z0-9_-]|\\?\.)*")
_COMMAND = re.compile(r"/[A-Za-z0-9_][A-Za-z0-9_./-]*")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")
_URL_START = re.compile(r"(?:https?|ftp)\\?:\\?/\\?/|www\\?\.[A-Za-z0-9_-]", re.I)
_URL_EXTENT = re.compile(r"[^\s<>`\[\](){}\"'|^]*")
_URL_TRAILING = ".,:;!?*_~"
_ATTRIBUTE = (
    r"(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*"
    r"(?:\s*=\s*(?:[^\s\"'=<>`]+|'[^']{0,1000}'|\"[^\"]{0,1000}\"))?)"
)
_HTML = re.compile(
    "|".join(
        (
            rf"<[A-Za-z][A-Za-z0-9-]*{_ATTRIBUTE}*\s*/?>",  # open tag
            r"</[A-Za-z][A-Za-z0-9-]*\s*>",  # closing tag
            r"<!--.{0,2000}?-->",  # comment (on one line; longer ones go in _segment)
            r"<\?.{0,300}?\?>",  # processing instruction
            r"<!\[CDATA\[.{0,2000}?\]\]>",  # CDATA
            r"<![A-Za-z][^>]{0,300}>",  # declaration
        )
    )
)
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>")
_CONTAINER_CHARS = " \t>*+-.)0123456789"  # what may precede a fence inside a list or quote
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class _Out:
    """The rewritten pieces of one line, with what the scanner needs to know about them."""

    def __init__(self, prev: str = "", *, at_line_start: bool = True) -> None:
        self.parts: list[str] = []
        self.reasons: list[str] = []
        self.prev = prev  # the last character written ("" at the start of a line)
        self.blank = at_line_start  # only spaces and tabs so far on this line
        self.container = at_line_start  # only list/quote markers so far on this line

    def keep(self, text: str) -> None:
        """Write ``text`` exactly as it was in the input."""
        if not text:
            return
        self.parts.append(text)
        self.prev = text[-1]
        if self.blank and text.strip(" \t"):
            self.blank = False
        if self.container and text.strip(_CONTAINER_CHARS):
            self.container = False

    def change(self, text: str, reason: str) -> None:
        """Write ``text`` in place of something that was unsafe, and say why."""
        self.seal()
        self.reasons.append(reason)
        self.keep(text)

    def seal(self) -> None:
        """Make sure a lone backslash written before cannot escape what we write next."""
        if self.parts and self.parts[-1] == "\\":
            self.parts[-1] = "\\\\"
            self.reasons.append("dangling backslash")

    def text(self) -> str:
        return "".join(self.parts)


class _Prose:
    """The inline scanner for prose lines; ``rewrite`` writes the canonical form to ``out``."""

    def __init__(self, policy: SanitizePolicy, *, table: bool) -> None:
        self.policy = policy
        self.table = table
        self.budget = SCAN_BUDGET

    def rewrite(self, line: str, out: _Out, *, link_mode: bool) -> None:
        """``link_mode``: ``line`` is the text of a link we keep, so no links or brackets."""
        i, n = 0, len(line)
        while i < n:
            plain = _PLAIN.match(line, i)
            if plain is not None:
                out.keep(plain.group())
                i = plain.end()
                continue
            c = line[i]
            if c == "\\":
                i = self._backslash(line, i, out)
            elif c == "`":
                i = self._backtick(line, i, out)
            elif c == "<":
                i = self._angle(line, i, out, link_mode)
            elif c == "!":
                i = self._bang(line, i, out, link_mode)
            elif c == "[":
                i = self._bracket(line, i, out, link_mode)
            elif c == "]":
                if link_mode:
                    out.change("\\]", "unescaped ']' in link text")
                else:
                    out.keep("]")
                i += 1
            elif c == "@":
                i = self._at(line, i, out)
            elif c == "&":
                i = self._ampersand(line, i, out)
            elif c == "/":
                i = self._slash(line, i, out)
            elif c == "~":
                if out.container and line.startswith("~~~", i):
                    out.change("\\~", "line that would open a code fence")
                else:
                    out.keep("~")
                i += 1
            elif c == "$":
                out.change("\\$", "math delimiter '$' (GitHub renders math)")
                i += 1
            else:  # h, f, w: maybe a URL
                i = self._maybe_url(line, i, out)

    # -- escapes and code spans

    def _backslash(self, line: str, i: int, out: _Out) -> int:
        nxt = line[i + 1 : i + 2]
        if not nxt or nxt not in _PUNCT:
            out.keep("\\")
            return i + 1
        if nxt == "@":
            if _is_alnum(out.prev):
                return self._address(line, i + 1, out, keep=line[i : i + 2])
            mention = _MENTION.match(line, i + 1)
            if mention is not None:  # "\@user" renders as "@user" and notifies
                self._wrap(mention.group(), line, mention.end(), out, "live @mention")
                return mention.end()
        out.keep(line[i : i + 2])
        return i + 2

    def _backtick(self, line: str, i: int, out: _Out) -> int:
        run = _run_length(line, i, "`")
        end = _span_end(line, i, run, table=self.table)
        if end is not None:
            out.keep(line[i:end])
            return end
        out.change("\\`" * run, "backtick that does not close on its line")
        return i + run

    # -- HTML

    def _angle(self, line: str, i: int, out: _Out, link_mode: bool) -> int:
        if i + 1 >= len(line) or line[i + 1] in " \t":
            out.keep("<")
            return i + 1
        tag = _HTML.match(line, i)
        if tag is not None:
            kind = "HTML comment (<!--)" if tag.group().startswith("<!--") else "raw HTML tag"
            name = _TAG_NAME.match(tag.group())
            apart = (  # "<summary>a</summary>b" reads "a b", not "ab"
                name is not None
                and name.group(1).lower() in _BLOCK_TAGS
                and out.prev not in ("", " ", "\t")
                and line[tag.end() : tag.end() + 1] not in ("", " ", "\t")
            )
            out.change(" " if apart else "", f"{kind} {_show(tag.group())}")
            return tag.end()
        auto = _AUTOLINK.match(line, i)
        if auto is not None:
            url = auto.group(1)
            if not _url_allowed(url, self.policy):
                out.change(LINK_REMOVED, f"non-allowlisted link {_show(url)}")
            elif link_mode:
                out.change(url, "autolink inside link text")
            else:
                self._emit_link(url, url, auto.group(), out)
            return auto.end()
        out.change("&lt;", "'<' that could open HTML")
        return i + 1

    # -- images and links

    def _bang(self, line: str, i: int, out: _Out, link_mode: bool) -> int:
        end = self._label_end(line, i + 1) if line.startswith("[", i + 1) else None
        if end is None:
            out.keep("!")
            return i + 1
        stop = end + 1
        if line.startswith("(", stop):
            dest = _parse_destination(line, stop)
            stop = stop if dest is None else dest[1]
        elif (ref := _REFERENCE.match(line, stop)) is not None:
            stop = ref.end()
        out.change(_marker(IMAGE_REMOVED, link_mode), f"image {_show(line[i:stop])}")
        return stop

    def _bracket(self, line: str, i: int, out: _Out, link_mode: bool) -> int:
        for marker in (REDACTED, IMAGE_REMOVED):
            if line.startswith(marker, i):
                out.change(_marker(marker, link_mode), "unescaped '['")
                return i + len(marker)
        end = self._label_end(line, i)
        if end is not None:
            text, stop = line[i + 1 : end], end + 1
            dest = _parse_destination(line, stop) if line.startswith("(", stop) else None
            if dest is not None:
                url, after = dest
                if not link_mode and _url_allowed(url, self.policy):
                    self._emit_link(text, url, line[i:after], out)
                else:
                    out.reasons.append(f"non-allowlisted link {_show(url)}")
                    self.rewrite(text, out, link_mode=link_mode)
                return after
            ref = _REFERENCE.match(line, stop)
            if ref is not None:
                out.reasons.append(f"reference link {_show(line[i : ref.end()])}")
                self.rewrite(text, out, link_mode=link_mode)
                return ref.end()
        out.change("\\[", "unescaped '[' (possible reference link)")
        return i + 1

    def _emit_link(self, text: str, url: str, source: str, out: _Out) -> None:
        inner = _Out("[", at_line_start=False)
        self.rewrite(text, inner, link_mode=True)
        out.seal()
        if out.parts and out.parts[-1] == "!":  # "!" + "[..](..)" would be an image
            out.parts[-1] = "\\!"
            out.reasons.append("'!' before a link")
        out.reasons.extend(inner.reasons)
        link = f"[{inner.text()}]({url})"
        if link == source:
            out.keep(link)
        else:
            out.change(link, "link rewritten to canonical form")

    def _label_end(self, line: str, i: int) -> int | None:
        """For ``line[i] == "["``: the index of its matching ``]`` on this line, if any."""
        depth, k, limit = 0, i, min(len(line), i + MAX_LABEL)
        while (m := _LABEL_SCAN.search(line, k, limit)) is not None:
            self.budget -= 1
            if self.budget < 0:
                return None
            k, c = m.start(), m.group()
            if c == "\\":
                k += 2
            elif c == "`":
                run = _run_length(line, k, "`")
                end = _span_end(line, k, run, table=self.table)
                k = k + run if end is None else end
            else:
                depth += 1 if c == "[" else -1
                if depth == 0:
                    return k
                k += 1
        return None

    # -- mentions, commands, entities, URLs

    def _at(self, line: str, i: int, out: _Out) -> int:
        if _is_alnum(out.prev):  # a@b.com is an address, not a mention
            return self._address(line, i, out, keep="@")
        mention = _MENTION.match(line, i)
        if mention is None:
            out.keep("@")
            return i + 1
        self._wrap(mention.group(), line, mention.end(), out, "live @mention")
        return mention.end()

    def _address(self, line: str, i: int, out: _Out, *, keep: str) -> int:
        """``line[i] == "@"`` after a letter or digit: an e-mail address, which GitHub's
        autolinker turns into a mailto: link even when escaped; its domain is shown as code."""
        domain = _DOMAIN.match(line, i)
        if domain is None:  # "a@" alone, or "a\\@": kept as written
            out.keep(keep)
            return i + 1
        self._wrap(domain.group(), line, domain.end(), out, "e-mail address (a mailto: link)")
        return domain.end()

    def _slash(self, line: str, i: int, out: _Out) -> int:
        command = _COMMAND.match(line, i) if out.blank else None
        if command is None:
            out.keep("/")
            return i + 1
        self._wrap(command.group(), line, command.end(), out, "bot command at line start")
        return command.end()

    def _wrap(self, token: str, line: str, end: int, out: _Out, reason: str) -> None:
        """``token`` as a code span, apart from neighbouring backticks so the runs stay apart."""
        before = " " if out.prev == "`" else ""
        after = " " if line.startswith("`", end) else ""
        out.change(f"{before}`{token}`{after}", f"{reason} {_show(token)}")

    def _ampersand(self, line: str, i: int, out: _Out) -> int:
        entity = _ENTITY.match(line, i)
        if entity is None:
            out.keep("&")
            return i + 1
        if not _entity_safe(entity.group()):
            out.change("&amp;", f"HTML entity {_show(entity.group())}")
            return i + 1
        out.keep(entity.group())
        return entity.end()

    def _maybe_url(self, line: str, i: int, out: _Out) -> int:
        start = _URL_START.match(line, i)
        if start is None or (line[i] in "wW" and _is_alnum(out.prev)):
            out.keep(line[i])
            return i + 1
        extent = _URL_EXTENT.match(line, i)
        assert extent is not None  # matches the empty string
        token = extent.group().rstrip(_URL_TRAILING)
        if len(token) < start.end() - i:
            token = start.group()
        if _url_allowed(token, self.policy):
            out.keep(token)
        else:
            out.change(LINK_REMOVED, f"non-allowlisted URL {_show(token)}")
        return i + len(token)


def _marker(marker: str, link_mode: bool) -> str:
    """One of our bracketed notes, escaped so it is never a link (in link text, fully)."""
    return "\\" + (marker[:-1] + "\\]" if link_mode else marker)


def _entity_safe(entity: str) -> bool:
    """An entity is kept only if it cannot spell a URL, a mention or an invisible character."""
    decoded = html.unescape(entity)
    if decoded == entity:  # not an entity GitHub knows: shown as typed
        return True
    return all(
        c in "<>&\"' "
        if c.isascii()
        else ord(c) not in _INVISIBLE and unicodedata.category(c) not in _UNSAFE_CATEGORIES
        for c in decoded
    )


def _run_length(line: str, i: int, char: str) -> int:
    k = i
    while k < len(line) and line[k] == char:
        k += 1
    return k - i


def _is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
