"""Shapes of credentials, shared by the config validator (no keys in gateway-routes.yaml) and,
later, by the outbound sanitizer (no keys in anything posted).

Pure: regular expressions and a function that names the first shape found.
"""

from __future__ import annotations

import re

SECRET_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # No leading \b on the token shapes: a token glued to a word ("0ghp_...") is still a token.
    ("GitHub token", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    (
        "OpenAI-style API key",
        re.compile(r"(?<![A-Za-z])sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"),
    ),
    ("AWS access key id", re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])")),
    ("Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("Slack token", re.compile(r"xox[abpors]-[A-Za-z0-9-]{10,}")),
    ("private key block", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("bearer credential", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")),
    # The scheme is bounded and must start at a non-scheme character: without that, a long run
    # of scheme characters makes the search quadratic.
    (
        "credentials in a URL",
        re.compile(
            r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\s:@]{1,256}:[^/\s@]{1,256}@"
        ),
    ),
)


def find_secret_shape(text: str) -> str | None:
    """The name of the first credential shape in ``text``, or None."""
    for name, pattern in SECRET_SHAPES:
        if pattern.search(text):
            return name
    return None
