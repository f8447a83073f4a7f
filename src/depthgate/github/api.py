"""Where GitHub's REST API is: the one default and the one reading of ``GITHUB_API_URL`` (set by
GitHub Actions, and by hand for GitHub Enterprise Server), for the Action, the CLI and the App."""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_API_URL = "https://api.github.com"


def api_url(env: Mapping[str, str]) -> str:
    return (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
