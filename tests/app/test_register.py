"""``depthgate register``: the App-manifest flow, page and code conversion, end to end."""

from __future__ import annotations

import html.parser
import json
import stat
from pathlib import Path

import pytest

from depthgate.app.auth import REVIEW_PERMISSIONS
from depthgate.app.cli import main
from depthgate.app.register import form_page, manifest, packaged_manifest
from depthgate.core.errors import DepthgateError
from tests.fakes.github import serve_github

SCHEMA = Path(__file__).parents[1] / "data" / "webhooks"


class _Form(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.inputs: dict[str, str] = {}
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action") or ""
        if tag == "input" and a.get("name"):
            self.inputs[str(a["name"])] = a.get("value") or ""
        if tag == "script":
            self.scripts += 1


def test_the_manifest_asks_for_what_the_app_uses_and_no_more() -> None:
    data = packaged_manifest()
    # the token the App mints per job asks for exactly these (plus metadata, always granted)
    assert data["default_permissions"] == {**REVIEW_PERMISSIONS, "metadata": "read"}
    events = set(data["default_events"])
    assert events == {
        "pull_request",
        "issue_comment",
        "pull_request_review_comment",
        "check_run",
        "check_suite",
    }
    # every event named is one GitHub's webhook schema defines
    schema = json.loads((SCHEMA / "octokit-webhooks-schemas-7.6.1.bundled.schema.json").read_text())
    names = {ref["$ref"].rsplit("/", 1)[-1].split("$", 1)[0] for ref in schema["oneOf"]}
    assert events <= {n.removesuffix("_event") for n in names}


def test_the_page_posts_the_manifest_to_github(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    rc = main(["register", "--webhook-url", "https://dg.example.org/webhook", "--out", str(out)])
    assert rc == 0
    form = _Form()
    form.feed(out.read_text())
    assert form.action.startswith("https://github.com/settings/apps/new?state=")
    assert form.scripts == 0  # nothing runs by itself: the operator confirms on GitHub
    data = json.loads(form.inputs["manifest"])
    assert data["hook_attributes"] == {"url": "https://dg.example.org/webhook", "active": True}
    assert data["redirect_url"] == "https://dg.example.org/"


def test_an_org_and_ghes() -> None:
    data = manifest(webhook_url="https://dg.example.org/webhook")
    page = form_page(data, github_url="https://ghe.example.com", org="acme")
    form = _Form()
    form.feed(page)
    assert form.action.startswith("https://ghe.example.com/organizations/acme/settings/apps/new?")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"webhook_url": "http://dg.example.org/webhook"}, "expected an https:// URL"),
        ({"webhook_url": "dg.example.org/webhook"}, "expected an https:// URL"),
        ({"webhook_url": "https://x/w", "name": "<script>"}, "GitHub App names"),
    ],
)
def test_bad_manifest_input(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(DepthgateError, match=message):
        manifest(**kwargs)


def test_markup_in_the_name_cannot_leave_the_attribute() -> None:
    data = manifest(webhook_url="https://x.example/w?a=1&b=\"'><i>")
    form = _Form()
    form.feed(form_page(data))
    assert json.loads(form.inputs["manifest"])["hook_attributes"]["url"].endswith("\"'><i>")


def test_the_code_becomes_private_credential_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_github() as gh:
        gh.add_manifest_code("abc123", manifest(webhook_url="https://dg.example.org/webhook"))
        env = {"GITHUB_API_URL": gh.url}
        import argparse  # noqa: PLC0415

        from depthgate.app.cli import run_app_command  # noqa: PLC0415

        args = argparse.Namespace(command="register", code="abc123", dir=str(tmp_path))
        assert run_app_command(args, env=env) == 0
        again = run_app_command(args, env=env)  # a code is valid once
    printed = capsys.readouterr()
    assert again == 4
    assert "valid once, for one hour" in printed.err
    key, envfile = tmp_path / "depthgate-app.pem", tmp_path / "depthgate-app.env"
    for f in (key, envfile):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    lines = dict(ln.split("=", 1) for ln in envfile.read_text().splitlines() if "=" in ln)
    assert lines["DEPTHGATE_PRIVATE_KEY_PATH"] == str(key.resolve())
    assert lines["DEPTHGATE_APP_ID"].isdigit()
    assert lines["DEPTHGATE_WEBHOOK_SECRET"] not in printed.out  # never on the terminal
    assert "BEGIN RSA PRIVATE KEY" in key.read_text()
