"""Register the GitHub App in one step, with GitHub's App-manifest flow.

1. ``depthgate register --webhook-url https://host/webhook`` writes an HTML page that posts
   depthgate's manifest (``data/app-manifest.json``: the events and the minimal permissions the
   App uses) to GitHub's "new App" form. Open it in a browser signed in to GitHub, confirm.
2. GitHub redirects to the manifest's ``redirect_url`` with ``?code=...``;
   ``depthgate register --code CODE`` exchanges it (``POST /app-manifests/{code}/conversions``,
   valid for one hour, once) for the App's id, private key and webhook secret, and writes them to
   ``depthgate-app.pem`` and ``depthgate-app.env`` (mode 0600) -- never to the terminal.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from depthgate.core.errors import EXIT_GITHUB, DepthgateError

DEFAULT_API_URL = "https://api.github.com"
_CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,33}")


def packaged_manifest() -> dict[str, Any]:
    text = resources.files("depthgate").joinpath("data", "app-manifest.json").read_text("utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def manifest(
    *, webhook_url: str, name: str = "depthgate", homepage: str | None = None
) -> dict[str, Any]:
    """depthgate's manifest with this server's URLs."""
    url = _https_url(webhook_url, "--webhook-url")
    if not _NAME.fullmatch(name):
        raise DepthgateError(
            f"--name {name!r}: GitHub App names are at most 34 letters, digits, spaces, '.', "
            "'_' or '-'"
        )
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}/"
    data = packaged_manifest()
    data["name"] = name
    data["hook_attributes"] = {"url": url, "active": True}
    data["redirect_url"] = base
    data["url"] = _https_url(homepage, "--homepage") if homepage else base
    return data


def form_page(
    data: dict[str, Any], *, github_url: str = "https://github.com", org: str | None = None
) -> str:
    """A page that posts the manifest to GitHub's new-App form (the manifest flow's step 1)."""
    root = _https_url(github_url, "--github-url").rstrip("/")
    if org is not None and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", org):
        raise DepthgateError(f"--org {org!r} is not a GitHub organization name")
    target = f"{root}/organizations/{org}/settings/apps/new" if org else f"{root}/settings/apps/new"
    state = secrets.token_urlsafe(16)
    value = html.escape(json.dumps(data), quote=True)
    return (
        "<!doctype html>\n<meta charset=utf-8>\n<title>Register the depthgate GitHub App</title>\n"
        f'<form method="post" action="{html.escape(target)}?state={state}">\n'
        f'<input type="hidden" name="manifest" value="{value}">\n'
        "<p>This registers a GitHub App named "
        f"<b>{html.escape(data['name'])}</b> that sends its webhooks to "
        f"<code>{html.escape(data['hook_attributes']['url'])}</code>.</p>\n"
        '<button type="submit">Create the GitHub App</button>\n</form>\n'
    )


def convert(
    code: str, directory: Path, *, api_url: str = DEFAULT_API_URL, timeout_s: float = 30
) -> list[Path]:
    """Exchange the redirect's code for the App's credentials; write them; return the paths."""
    if not _CODE.fullmatch(code):
        raise DepthgateError("--code: expected the `code` GitHub put in the redirect URL")
    api = _https_url(api_url, "GITHUB_API_URL", allow_loopback_http=True).rstrip("/")
    try:
        resp = httpx.post(
            f"{api}/app-manifests/{code}/conversions",
            headers={"Accept": "application/vnd.github+json"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise _failure(f"could not reach {api}: {type(exc).__name__}") from None
    if resp.status_code == 404:
        raise _failure(
            "GitHub does not know this code: it is valid once, for one hour. Open the "
            "registration page again (depthgate register --webhook-url ...)"
        )
    if resp.status_code != 201:
        raise _failure(f"GitHub answered {resp.status_code} to the manifest conversion")
    try:
        body = resp.json()
        app_id, pem, secret = str(body["id"]), str(body["pem"]), str(body["webhook_secret"])
        slug = str(body.get("slug") or "depthgate")
    except (ValueError, KeyError, TypeError):
        raise _failure(
            "GitHub's answer to the manifest conversion is not what it documents"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "depthgate-app.pem"
    env = directory / "depthgate-app.env"
    _write_private(key, pem)
    _write_private(
        env,
        f"# the GitHub App {slug}, registered by depthgate register\n"
        f"DEPTHGATE_APP_ID={app_id}\n"
        f"DEPTHGATE_PRIVATE_KEY_PATH={key.resolve()}\n"
        f"DEPTHGATE_WEBHOOK_SECRET={secret}\n",
    )
    return [key, env]


def _write_private(path: Path, text: str) -> None:
    if path.exists():
        raise DepthgateError(f"{path} exists: move it away first (it may hold another App's key)")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _https_url(value: str | None, what: str, *, allow_loopback_http: bool = False) -> str:
    parts = urlsplit(value or "")
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if (
        not parts.netloc
        or parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not (allow_loopback_http and loopback))
    ):
        raise DepthgateError(f"{what} {value!r}: expected an https:// URL")
    return value or ""


def _failure(message: str) -> DepthgateError:
    err = DepthgateError(message)
    err.exit_code = EXIT_GITHUB
    return err
