"""Edges of the sanitizer that the mutation run found untested, judged by what GitHub's own
renderer (cmark-gfm) makes of the output where rendering is the question."""

from __future__ import annotations

import re

import cmarkgfm  # type: ignore[import-untyped]  # no type information shipped
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


@pytest.mark.parametrize("repo", ["octo/app", "octo/app/", "/octo/app", "Octo/App"])
def test_the_repo_of_the_policy_is_normalised(repo: str) -> None:
    url = "https://github.com/octo/app/pull/1"
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
