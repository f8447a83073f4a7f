"""An oracle depthgate did not write: what GitHub's own Markdown renderer (cmark-gfm, through
cmarkgfm) makes of a text depthgate would post.

``problems(markdown, ...)`` renders the text twice -- once as cmark's safe mode does (every raw
HTML node replaced by a placeholder, so every element left comes from Markdown syntax) and once
unsafe (raw HTML as written) -- and reports everything GitHub could show that depthgate must
never post:

* a raw HTML node that is not one of depthgate's own (``<details>``, ``<summary>``, ``<sub>``
  and its hidden ``<!-- depthgate:... -->`` markers) -- GitHub's sanitizer keeps more than cmark
  would, so any other raw HTML that survives counts, harmless or not;
* an element Markdown made that depthgate never writes (images, task-list inputs, ...);
* a link whose target is not in the repository on github.com;
* an @mention, a bare URL or ``www.`` address in text outside code (GitHub's mention filter and
  autolinker work on the rendered text);
* a bidi, zero-width or control character anywhere;
* any of the given secret values, in the Markdown or in what it renders to.

It uses no depthgate code: only cmarkgfm and the standard library's HTML parser.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import cmarkgfm
from cmarkgfm.cmark import Options

PLACEHOLDER = "<!-- raw HTML omitted -->"
# The elements cmark-gfm makes from the Markdown constructs depthgate uses
MARKDOWN_ELEMENTS = frozenset(
    [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "code",
        "pre",
        "em",
        "strong",
        "del",
        "ul",
        "ol",
        "li",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "a",
        "br",
        "hr",
    ]
)
OWN_RAW = re.compile(
    r"(?:</?(?:details|summary|sub)>|[^<>\n])*\n?"  # depthgate's own tags and plain text
    r"|<!-- depthgate:(?:summary \{[^\n]*\}|fp=[0-9a-f]{8,64}(?: tier=(?:fast|logic|deep))?"
    r"|reply to=\d+|command-reply) -->\n?"
)
MENTION = re.compile(r"(?<![A-Za-z0-9])@[A-Za-z0-9]")  # "a@b" is no mention (an e-mail is a link)
# what GitHub's autolinker links in plain text (e-mail addresses are caught as links)
BARE_LINK = re.compile(r"(?<![a-z0-9])(?:(?:https?|ftp)://|www\.)[^\s<>]*", re.IGNORECASE)
INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def render(markdown: str, *, unsafe: bool = False) -> str:
    options = Options.CMARK_OPT_UNSAFE if unsafe else 0
    return str(cmarkgfm.github_flavored_markdown_to_html(markdown, options))


def problems(
    markdown: str,
    *,
    repo: str | None = None,
    secrets: tuple[str, ...] = (),
    own_html: bool = True,
    hosts: tuple[str, ...] = (),
) -> list[str]:
    """Everything wrong with posting ``markdown`` (see the module docstring); [] when fine.
    ``own_html=False``: not even depthgate's own raw HTML is expected (a comment body).
    ``hosts``: hosts whose https links are allowed besides the repository (an allowlist)."""
    found: list[str] = []
    safe = render(markdown)
    unsafe = render(markdown, unsafe=True)
    for raw in raw_html(safe, unsafe):
        if not own_html or not OWN_RAW.fullmatch(raw):
            found.append(f"raw HTML {raw[:80]!r}")
    parser = _Walker(repo, hosts)
    parser.feed(safe)
    parser.close()
    found += parser.found
    if INVISIBLE.search(markdown):
        found.append("invisible or control character")
    visible = html.unescape(unsafe)
    for secret in secrets:
        if secret in markdown or secret in visible:
            found.append(f"secret {secret[:6]}…")
    return found


def raw_html(safe: str, unsafe: str) -> list[str]:
    """The raw HTML nodes: what the unsafe rendering has where the safe one has placeholders."""
    pieces = safe.split(PLACEHOLDER)
    if not unsafe.startswith(pieces[0]):
        raise AssertionError("the two renderings differ outside raw HTML")
    out = _align(unsafe, len(pieces[0]), pieces[1:])
    if out is None:
        raise AssertionError("could not align the safe and unsafe renderings")
    return out


def _align(unsafe: str, pos: int, rest: list[str]) -> list[str] | None:
    # each raw node starts with "<" and is followed by the next safe piece: try the shortest
    # first, backtracking when a later piece does not fit
    if not rest:
        return [] if pos == len(unsafe) else None
    if not unsafe.startswith("<", pos):
        return None
    nxt, tail = rest[0], rest[1:]
    start = pos + 1
    while (j := unsafe.find(nxt, start)) != -1:
        if not tail and j + len(nxt) != len(unsafe):
            start = j + 1
            continue
        later = _align(unsafe, j + len(nxt), tail)
        if later is not None:
            return [unsafe[pos:j], *later]
        start = j + 1
    return None


class _Walker(HTMLParser):
    def __init__(self, repo: str | None, hosts: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.repo = repo
        self.hosts = {h.lower() for h in hosts}
        self.found: list[str] = []
        self.shielded = 0  # inside code, pre or a link: no mention, no autolink

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in MARKDOWN_ELEMENTS:
            self.found.append(f"element <{tag}>")
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if not self._allowed(href):
                self.found.append(f"link to {href[:80]!r}")
        if tag in ("code", "pre", "a"):
            self.shielded += 1

    def _allowed(self, url: str) -> bool:
        host = urlsplit(url).netloc.lower()
        return (url.startswith("https://") and host in self.hosts) or _in_repo(url, self.repo)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre", "a"):
            self.shielded -= 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("code", "pre", "a"):
            self.shielded -= 1

    def handle_data(self, data: str) -> None:
        if self.shielded:
            return
        if MENTION.search(data):
            self.found.append(f"live mention in {data[:80]!r}")
        for m in BARE_LINK.finditer(data):
            url = m.group()
            url = "https://" + url if url[:4].lower() == "www." else url
            url = "https:" + url if url.startswith("//") else url
            if not self._allowed(url):
                self.found.append(f"bare link {url[:80]!r}")

    def handle_comment(self, data: str) -> None:
        if f"<!--{data}-->" != PLACEHOLDER:
            self.found.append(f"comment {data[:80]!r}")


def _in_repo(href: str, repo: str | None) -> bool:
    parts = urlsplit(href)
    if parts.scheme != "https" or parts.netloc.lower() != "github.com" or not repo:
        return False
    path = parts.path.lower()
    root = "/" + repo.lower()
    return (path == root or path.startswith(root + "/")) and "/../" not in path + "/"
