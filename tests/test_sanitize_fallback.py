"""The sanitizer's last line of defence: when rewriting has not reached a safe form within its
pass bound, ``sanitize`` posts a fixed notice, never the half-rewritten text. Checked on what
GitHub's own renderer (cmark-gfm) makes of the output, not with the sanitizer's scanner.

No natural input is known to need more than the 8 passes the bound allows (rewriting converges
in 2-3), so the test lowers the bound to 1 and feeds a text that needs 2: removing the tags in
``@<b></b>octocat`` only then forms a live mention."""

from __future__ import annotations

import re

import cmarkgfm
import pytest

from depthgate.core import sanitize as sanitize_module
from depthgate.core.sanitize import FALLBACK, SanitizePolicy, sanitize

HIDDEN_MENTION = "ping @<b></b>octocat now"


def live_mentions(markdown: str) -> list[str]:
    """@mentions GitHub would notify: in the rendered HTML, outside code."""
    html = cmarkgfm.github_flavored_markdown_to_html(markdown)
    text = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    return re.findall(r"(?<![\w/])@[A-Za-z0-9-]+", text)


def test_the_hidden_mention_is_defused_within_the_bound() -> None:
    assert live_mentions("ping @octocat now") == ["@octocat"]  # the oracle sees mentions
    out = sanitize(HIDDEN_MENTION, SanitizePolicy())
    assert "octocat" in out
    assert live_mentions(out) == []


def test_a_rewrite_that_did_not_settle_posts_the_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sanitize_module, "MAX_PASSES", 1)
    out = sanitize(HIDDEN_MENTION, SanitizePolicy())
    assert out == FALLBACK
    assert live_mentions(out) == []


def test_the_notice_itself_is_withheld_when_it_would_not_be_clean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A configured secret that happens to occur in the notice: then nothing is posted."""
    monkeypatch.setattr(sanitize_module, "MAX_PASSES", 1)
    policy = SanitizePolicy(secrets=("could not be made safe",))
    assert sanitize(HIDDEN_MENTION, policy) == ""


IMAGES = [
    "![beacon](https://evil.example/pixel.png)",
    "see ![beacon](https://evil.example/pixel.png) here",
    "[![beacon](https://evil.example/pixel.png)](https://evil.example/)",
    "!![beacon](https://evil.example/pixel.png)",
    "[x]![beacon](https://evil.example/pixel.png)",
    "![![beacon](https://evil.example/pixel.png)](https://evil.example/b.png)",
    "![](https://evil.example/pixel.png)",
    "![beacon][ref]\n\n[ref]: https://evil.example/pixel.png",
]


@pytest.mark.parametrize("text", IMAGES)
def test_no_image_survives_as_rendered_by_cmark_gfm(text: str) -> None:
    assert "<img" in cmarkgfm.github_flavored_markdown_to_html(text)  # the oracle sees it
    out = sanitize(text, SanitizePolicy(repo="octo/app"))
    html = cmarkgfm.github_flavored_markdown_to_html(out)
    assert "<img" not in html
    assert "evil.example" not in html


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Wow! See [the docs] below", "Wow! See [the docs] below"),  # "!" then text: no image
        ("a]![b](https://evil.example/p.png) c", "a][image removed] c"),  # "]" before the "!"
    ],
)
def test_only_the_image_goes(text: str, kept: str) -> None:
    out = sanitize(text, SanitizePolicy(repo="octo/app"))
    html = cmarkgfm.github_flavored_markdown_to_html(out)
    assert re.sub(r"<[^>]+>", "", html).strip() == kept
