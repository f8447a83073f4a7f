"""Edges of the sanitizer that the mutation run found untested, judged by what GitHub's own
renderer (cmark-gfm) makes of the output where rendering is the question."""

from __future__ import annotations

import re

import cmarkgfm
import pytest

from depthgate.core.sanitize import TRUNCATION_NOTE, SanitizePolicy, sanitize


def hrefs(markdown: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', cmarkgfm.github_flavored_markdown_to_html(markdown))


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/octo/app/./blob/main/x.py",  # a dot segment
        "https://github.com/octo/app//evil.example/x",  # an empty segment
        "https://github.com/octo/app/../other/x",
    ],
)
def test_links_into_the_repo_must_have_a_plain_path(url: str) -> None:
    assert hrefs(f"[a]({url})") == [url]  # the oracle sees the link
    assert hrefs(sanitize(f"[a]({url})", SanitizePolicy(repo="octo/app"))) == []


@pytest.mark.parametrize(
    ("repo", "url"),
    [
        ("octo/app", "https://github.com/octo/app/pull/1"),
        ("octo/app/", "https://github.com/octo/app/pull/1"),
        ("/octo/app", "https://github.com/octo/app/pull/1"),
        ("Octo/App", "https://github.com/octo/app/pull/1"),
        ("Xo/AppX", "https://github.com/xo/appx/pull/1"),
    ],
)
def test_the_repo_of_the_policy_is_normalised(repo: str, url: str) -> None:
    assert hrefs(sanitize(f"[a]({url})", SanitizePolicy(repo=repo))) == [url]


def test_a_mention_next_to_a_code_span_stays_inert() -> None:
    out = sanitize("@octocat`code`", SanitizePolicy())
    html = cmarkgfm.github_flavored_markdown_to_html(out)
    assert re.sub(r"\s+", " ", html).strip() == "<p><code>@octocat</code> <code>code</code></p>"


def test_truncation_uses_the_room_when_escaping_grows_the_text() -> None:
    out = sanitize("<" * 1000, SanitizePolicy(max_bytes=200))  # each "<" becomes "&lt;"
    assert out.endswith(TRUNCATION_NOTE)
    assert 200 - len("&lt;") < len(out.encode()) <= 200
    html = cmarkgfm.github_flavored_markdown_to_html(out)
    assert "<" not in re.sub(r"</?p>", "", html)  # no tag but the paragraph


def test_truncating_blank_text_leaves_the_note_alone() -> None:
    assert sanitize("   \n" * 100, SanitizePolicy(max_bytes=50)) == TRUNCATION_NOTE.lstrip("\n")


# Cut over the cap: at the last line break when it lies in the second half of what fits, else at
# the byte. Worked out by hand: the cap, less the note's 30 bytes, is what fits before the note.
CUTS = [
    ("a" * 30 + "\n" + "b" * 30 + "\n" + "c" * 60, 100, "a" * 30 + "\n" + "b" * 30),
    ("a" * 30 + "\n" + "c" * 100, 100, "a" * 30 + "\n" + "c" * 39),  # break in the first half
    ("a" * 35 + "\n" + "c" * 100, 100, "a" * 35),  # break exactly halfway through 70
    ("a" * 35 + "\n" + "c" * 100, 101, "a" * 35),  # ... and through 71
    ("a" * 40 + "\n" + "b" * 29 + "\n" + "c" * 100, 100, "a" * 40 + "\n" + "b" * 29),  # fits
]


@pytest.mark.parametrize(("text", "cap", "kept"), CUTS)
def test_truncation_cuts_at_a_late_line_break(text: str, cap: int, kept: str) -> None:
    assert len(TRUNCATION_NOTE.encode()) == 30
    assert sanitize(text, SanitizePolicy(max_bytes=cap)) == kept + TRUNCATION_NOTE


def test_text_exactly_at_the_cap_is_not_cut() -> None:
    text = "a" * 60 + "\n" + "b" * 39
    assert sanitize(text, SanitizePolicy(max_bytes=100)) == text


@pytest.mark.parametrize(
    ("cap", "out"),
    [
        (12, "… (truncat"),  # not even the note fits: as much of it as does
        (31, "x" + TRUNCATION_NOTE),  # one byte of text fits before the note
    ],
)
def test_tiny_caps(cap: int, out: str) -> None:
    assert sanitize("x" * 100, SanitizePolicy(max_bytes=cap)) == out
