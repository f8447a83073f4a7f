"""core/markdown.py against GitHub's renderer (cmark-gfm): whatever the text, a code span stays
one code span showing that text, escaped text shows its characters and nothing else, a table
cell stays one cell -- and no secret, mention, link or HTML comes out. The oracle is
tests/markdown_oracle.py: cmarkgfm and the standard library's HTML parser."""

from __future__ import annotations

import html
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthgate.core.markdown import CODE_LIMIT, Escape, fence_for
from tests.markdown_oracle import problems, render

KEY = "sk-canary-gateway-key-" + "0123456789abcdef"
TOKEN = "dg-canary-github-token-" + "41be0d"
GHP = "ghp_" + "aB3dE5fG7h" * 3 + "iJ1kL2"
AKIA = "AKIA" + "IOSFODNN7EXAMPLE"
ESC = Escape((KEY, TOKEN))
REPO = "octo/app"
HOSTILE = [
    "docs/x` @victim <img src=https://evil.example/p.png> `y.png",
    "@@ -1,3 +1,4 @@ def f(a): # `@x` <b>",
    "[x](https://evil.example)",
    "![i](https://evil.example/i.png)",
    "<!-- hidden --> tail",
    "<details><summary>x</summary>y</details>",
    "a\u202eb\u200bc",
    "www.evil.example and http://evil.example/x and mail me@evil.example",
    "| a | b |",
    "```\ncode\n```",
    "line one\nline two\r\n# heading\n- item\n> quote",
    "*em* _em_ **strong** ~~del~~ $math$ &amp; &#64;user",
    "\\`\\",
    "`",
    "``",
    " ` ",
    "   ",
    "",
    "/approve",
    "1. first",
    f"key {KEY} token {TOKEN} {GHP} {AKIA}",
]
FRAGMENTS = [
    *HOSTILE,
    "`",
    "``",
    "```",
    "\\",
    "|",
    "@",
    "@octocat",
    "<",
    ">",
    "[",
    "]",
    "(",
    ")",
    "!",
    "*",
    "_",
    "~",
    "$",
    "&",
    "#",
    "-",
    "\n",
    " ",
    "www.",
    "http://",
    "://",
    KEY,
    GHP,
]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=30).map(
    "".join
)
SECRETS = (KEY, TOKEN, GHP, AKIA)


def paragraph_html(markdown: str) -> str:
    out = render(f"before {markdown} after").strip()
    assert out.startswith("<p>before "), out
    assert out.endswith(" after</p>"), out
    return out[len("<p>before ") : -len(" after</p>")]


def visible(fragment: str) -> str:
    return html.unescape(re.sub(r"</?code>", "", fragment))


def expected(text: str, limit: int) -> str:
    """What the helpers promise to show of a text without secrets and invisible characters:
    carriage returns dropped, line breaks and tabs as spaces, capped with an ellipsis."""
    one_line = text.replace("\r", "")
    for brk in "\n\t\u2028\u2029":
        one_line = one_line.replace(brk, " ")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def comparable(text: str) -> bool:
    """No secret and no character the helpers drop (controls, format characters, fillers)."""
    return not any(s in text for s in SECRETS) and all(
        c in "\n\t\r" or (unicodedata.category(c)[0] != "C" and c not in FILLERS) for c in text
    )


FILLERS = "\u115f\u1160\u17b4\u17b5\u3164\uffa0\u034f\u180b\u180c\u180d\u180e\u180f"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_as_code_is_one_code_span(text: str) -> None:
    inner = paragraph_html(ESC.code(text))
    assert problems(f"before {ESC.code(text)} after", secrets=SECRETS) == []
    assert inner.startswith("<code>")
    assert inner.endswith("</code>")
    assert inner.count("<code>") == 1


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_as_text_renders_as_text(text: str) -> None:
    md = ESC.text(text)
    assert problems(f"before {md} after", secrets=SECRETS) == []
    assert "\n" not in md


@settings(max_examples=400, deadline=None)
@given(text=TEXT)
def test_a_code_span_shows_exactly_its_text(text: str) -> None:
    md = ESC.code(text)
    assert problems(f"before {md} after", secrets=SECRETS) == []
    inner = paragraph_html(md)
    assert inner.startswith("<code>")
    assert inner.endswith("</code>")
    assert inner.count("<code>") == 1
    if comparable(text) and text.replace("\r", ""):
        assert visible(inner) == expected(text, CODE_LIMIT)


@settings(max_examples=400, deadline=None)
@given(text=TEXT)
def test_escaped_text_shows_its_characters_and_nothing_else(text: str) -> None:
    md = ESC.text(text)
    assert problems(f"before {md} after", secrets=SECRETS) == []
    inner = paragraph_html(md) if md else ""
    assert re.sub(r"</?code>", "", inner).count("<") == 0  # no element but code
    if comparable(text):
        assert visible(inner) == " ".join(expected(text, 1000).split())


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_a_table_cell_stays_one_cell(text: str) -> None:
    row = f"| {ESC.cell(text)} | {ESC.code(text, table=True)} | end |"
    table = f"| a | b | c |\n|---|---|---|\n{row}"
    assert problems(table, secrets=SECRETS) == []
    body = render(table).split("<tbody>")[1]
    cells = re.findall(r"<td>(.*?)</td>", body, re.DOTALL)
    assert len(cells) == 3, body
    assert cells[2] == "end", body
    assert cells[1].startswith("<code>")
    assert cells[1].count("<code>") == 1


@pytest.mark.parametrize("helper", ["code", "text", "cell", "plain"])
def test_every_helper_redacts_exact_values_and_shapes(helper: str) -> None:
    out = getattr(ESC, helper)(f"a {KEY} b {TOKEN} c {GHP} d {AKIA} e")
    for secret in SECRETS:
        assert secret not in out
    assert "REDACTED" in out


def test_a_secret_split_by_an_invisible_character_is_still_redacted() -> None:
    assert "canary-gateway" not in ESC.text(KEY[:6] + "\u200b" + KEY[6:])


def test_the_cap_applies_after_redaction_so_no_secret_prefix_is_left() -> None:
    out = ESC.code("x" * (CODE_LIMIT - 10) + KEY)
    assert "sk-can" not in out
    assert len(visible(paragraph_html(out))) <= CODE_LIMIT


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a`b", "``a`b``"),
        ("`x", "`` `x ``"),
        ("x`", "`` x` ``"),
        ("``", "``` `` ```"),
        ("a\nb", "`a b`"),
    ],
)
def test_the_fence_adapts_to_backtick_runs(text: str, shown: str) -> None:
    assert Escape().code(text) == shown


@pytest.mark.parametrize(
    "text",
    ["plain", "a ``` b", "````\n```\n~~~", "x`y``z`````", "ends with ```"],
)
def test_a_fenced_block_holds_exactly_its_text(text: str) -> None:
    fence = fence_for(text)
    out = render(f"{fence}text\n{text}\n{fence}\n\nafter")
    # cmark-gfm: one code block with the text, and the paragraph after it outside the block
    assert out.count("<pre") == 1
    body = out.split("<code", 1)[1].split(">", 1)[1].split("</code>", 1)[0]
    assert html.unescape(body) == text + "\n"
    assert out.rstrip().endswith("<p>after</p>")
