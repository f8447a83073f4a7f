"""GitHub App auth against the fake GitHub: one-repository tokens with minimal permissions (T9),
cached by installation (T16), re-minted once on 401; config from the default branch only;
``depthgate reconcile``."""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from depthgate.app import App, Context, JobResult
from depthgate.app.auth import REVIEW_PERMISSIONS, AppAuthenticator, RepoRef
from depthgate.app.cli import add_app_parsers, run_app_command
from depthgate.app.errors import AppAuthError
from depthgate.app.jobs import JobState
from depthgate.app.settings import AppSettings
from depthgate.app.surface import REVIEW_EVENTS
from depthgate.configfile import REPOSITORY_CONFIG_PATHS
from depthgate.core.guidance import DEFAULT_GUIDELINES
from depthgate.core.routes import LoadedConfig, packaged_text
from tests.app.harness import Clock, Harness
from tests.app.helpers import pr_payload
from tests.fakes.github import FakeGitHub, serve_github

APP_ID = 4242


@pytest.fixture
def fake(rsa_keys: tuple[str, str]) -> Iterator[FakeGitHub]:
    with serve_github() as gh:
        gh.add_app(APP_ID, public_key=rsa_keys[1])
        gh.add_installation(11, app_id=APP_ID, account="alice")
        gh.add_installation(12, app_id=APP_ID, account="bob")
        yield gh


def token_requests(fake: FakeGitHub) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/access_tokens")]


def make_auth(fake: FakeGitHub, rsa_keys: tuple[str, str], **kw: Any) -> AppAuthenticator:
    return AppAuthenticator(str(APP_ID), rsa_keys[0], api_url=fake.url, write_interval_s=0, **kw)


def test_a_token_names_one_repository_and_minimal_permissions(
    fake: FakeGitHub, rsa_keys: tuple[str, str]
) -> None:
    repo = fake.add_repo("alice/app")
    auth = make_auth(fake, rsa_keys)
    token = auth.token(11, RepoRef("alice/app", repo["id"]))
    assert token.startswith("ghs_")
    (req,) = token_requests(fake)
    assert req.path == "/app/installations/11/access_tokens"
    assert req.body == {"repository_ids": [repo["id"]], "permissions": REVIEW_PERMISSIONS}
    assert "merge" not in str(req.body)
    assert "administration" not in req.body["permissions"]


def test_tokens_are_cached_by_installation_not_by_repository_name(
    fake: FakeGitHub, rsa_keys: tuple[str, str]
) -> None:
    a = fake.add_repo("alice/app")
    b = fake.add_repo("bob/app")  # the same repository name under another installation
    auth = make_auth(fake, rsa_keys)
    ta = auth.token(11, RepoRef("alice/app", a["id"]))
    assert auth.token(11, RepoRef("alice/app", a["id"])) == ta  # cached
    tb = auth.token(12, RepoRef("bob/app", b["id"]))
    assert tb != ta
    assert [r.path for r in token_requests(fake)] == [
        "/app/installations/11/access_tokens",
        "/app/installations/12/access_tokens",
    ]
    # and without ids, names alone never share a token across installations
    auth2 = make_auth(fake, rsa_keys)
    t1 = auth2.token(11, RepoRef("alice/app"))
    t2 = auth2.token(12, RepoRef("bob/app"))
    assert t1 != t2


def test_a_token_is_replaced_shortly_before_it_expires(
    fake: FakeGitHub, rsa_keys: tuple[str, str]
) -> None:
    repo = fake.add_repo("alice/app")
    clock = Clock()
    auth = make_auth(fake, rsa_keys, clock=clock)
    ref = RepoRef("alice/app", repo["id"])
    first = auth.token(11, ref)
    clock.now += 3600 - 400  # 400 s left: still used
    assert auth.token(11, ref) == first
    clock.now += 200  # 200 s left, under the 300 s margin: a new one
    assert auth.token(11, ref) != first
    assert auth.minted == 2


def test_clear_errors_when_github_refuses(fake: FakeGitHub, rsa_keys: tuple[str, str]) -> None:
    fake.add_repo("alice/app")
    auth = make_auth(fake, rsa_keys)
    with pytest.raises(AppAuthError, match="not installed"):
        auth.token(99, RepoRef("alice/app"))
    wrong = AppAuthenticator("9999", rsa_keys[0], api_url=fake.url)
    with pytest.raises(AppAuthError, match="DEPTHGATE_APP_ID"):
        wrong.token(11, RepoRef("alice/app"))
    nowhere = AppAuthenticator(str(APP_ID), rsa_keys[0], api_url="http://127.0.0.1:9")
    with pytest.raises(AppAuthError, match="GITHUB_API_URL"):
        nowhere.token(11, RepoRef("alice/app"))


def _harness(
    fake: FakeGitHub, settings: AppSettings, rsa_keys: tuple[str, str], handler: Any
) -> Harness:
    app = App()
    app.on(*REVIEW_EVENTS)(handler)
    h = Harness(settings, app, auth=make_auth(fake, rsa_keys))
    app.config_loader = None  # the real one: the default branch through the installation
    return h


def _pr(fake: FakeGitHub, repo: str = "alice/app") -> dict[str, Any]:
    info = fake.add_repo(repo)
    fake.add_pull(repo, 7, head_sha="a" * 40, files=[])
    return pr_payload(repo=repo, repo_id=info["id"], installation=11)


def test_a_401_re_mints_the_token_once(
    fake: FakeGitHub, settings: AppSettings, rsa_keys: tuple[str, str]
) -> None:
    titles: list[str] = []

    def handler(ctx: Context) -> JobResult:
        owner, name, number = ctx.pull_request()
        titles.append(ctx.github().get_repo(f"{owner}/{name}").get_pull(number).title)
        return JobResult("success")

    h = _harness(fake, settings, rsa_keys, handler)
    try:
        payload = _pr(fake)
        fake.fail_next("GET", r"/pulls/7$", 401, body={"message": "Bad credentials"})
        h.deliver(payload)
        h.drain()
        assert titles == ["A pull request"]
        assert h.runner.auth is not None
        assert h.runner.auth.minted == 2
        record = h.queue.store.record(f"i11:r{payload['repository']['id']}:pr7:" + "a" * 40)
        assert record is not None
        assert (record.state, record.attempts) == (JobState.DONE, 1)
    finally:
        h.close()


def test_config_comes_from_the_default_branch_else_the_server(
    fake: FakeGitHub, settings: AppSettings, rsa_keys: tuple[str, str]
) -> None:
    seen: list[LoadedConfig] = []
    h = _harness(fake, settings, rsa_keys, lambda ctx: seen.append(ctx.config))
    try:
        payload = _pr(fake)
        h.deliver(payload)
        h.drain()
        assert seen[-1].sha256 == h.config.sha256  # nothing in the repository: the server's
        repo_text = packaged_text("gateway-routes.yaml") + "\n# the repository's copy\n"
        fake.add_contents("alice/app", ".github/gateway-routes.yaml", repo_text, ref="main")
        fake.add_contents("alice/app", ".github/gateway-routes.yaml", "not: [valid", ref="feature")
        h.deliver(
            pr_payload(
                repo="alice/app",
                repo_id=payload["repository"]["id"],
                head="c" * 40,
                installation=11,
                action="synchronize",
                updated_at="2026-03-01T00:00:00Z",
            )
        )
        fake.push("alice/app", 7, "c" * 40, [])
        h.drain()
        assert (
            seen[-1].source == "alice/app@main:.github/gateway-routes.yaml over " + h.config.source
        )
        assert seen[-1].sha256 != h.config.sha256
        assert not [r for r in fake.requests if "/contents/" in r.path]
        reads = [r for r in fake.requests if r.path == "/graphql"]
        assert len(reads) == 2  # one per job: both candidate paths and the guidelines in one
        asked = [v for r in reads for k, v in r.body["variables"].items() if k.startswith("v")]
        paths = [*REPOSITORY_CONFIG_PATHS, *DEFAULT_GUIDELINES]
        assert asked == [f"main:{p}" for p in paths] * 2
    finally:
        h.close()


def test_an_invalid_repository_config_fails_the_job_without_retries(
    fake: FakeGitHub, settings: AppSettings, rsa_keys: tuple[str, str]
) -> None:
    calls: list[Context] = []
    failures: list[str] = []
    h = _harness(fake, settings, rsa_keys, calls.append)
    h.app.on_failure(lambda ctx, job, error: failures.append(error))
    try:
        payload = _pr(fake)
        fake.add_contents("alice/app", ".github/gateway-routes.yaml", "limits: 3\n", ref="main")
        h.deliver(payload)
        h.drain()
        assert calls == []
        assert len(failures) == 1
        assert "gateway-routes.yaml" in failures[0]
    finally:
        h.close()


def _reconcile(fake: FakeGitHub, rsa_keys: tuple[str, str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_app_parsers(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    env = {
        "DEPTHGATE_APP_ID": str(APP_ID),
        "DEPTHGATE_PRIVATE_KEY": rsa_keys[0],
        "GITHUB_API_URL": fake.url,
    }
    code = run_app_command(parser.parse_args(["reconcile", *argv]), env=env, out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def test_reconcile_redelivers_only_what_never_got_a_2xx(
    fake: FakeGitHub, rsa_keys: tuple[str, str]
) -> None:
    now = time.time()
    failed = fake.add_delivery(guid="g-failed", status_code=500, delivered_at=now - 60)
    fake.add_delivery(guid="g-ok", status_code=202, delivered_at=now - 50)
    fake.add_delivery(guid="g-later-ok", status_code=502, delivered_at=now - 40)
    fake.add_delivery(guid="g-later-ok", status_code=202, delivered_at=now - 30, redelivery=True)
    fake.add_delivery(guid="g-old", status_code=500, delivered_at=now - 3 * 86400)
    for i in range(150):  # more than one page
        fake.add_delivery(guid=f"g-bulk-{i}", status_code=200, delivered_at=now - 20)
    code, text = _reconcile(fake, rsa_keys, "--dry-run")
    assert code == 0
    assert "would redeliver g-failed" in text
    assert not [r for r in fake.requests if r.path.endswith("/attempts")]
    code, text = _reconcile(fake, rsa_keys)
    assert code == 0
    posts = [r.path for r in fake.requests if r.path.endswith("/attempts")]
    assert posts == [f"/app/hook/deliveries/{failed['id']}/attempts"]
    assert "redelivered g-failed" in text
    code, text = _reconcile(fake, rsa_keys)  # the redelivery succeeded: nothing left
    assert "0 delivery(ies) never answered" in text


def test_reconcile_without_credentials_is_a_clear_error() -> None:
    parser = argparse.ArgumentParser()
    add_app_parsers(parser.add_subparsers(dest="command"))
    err = io.StringIO()
    code = run_app_command(parser.parse_args(["reconcile"]), env={}, out=io.StringIO(), err=err)
    assert code == 2
    assert "DEPTHGATE_APP_ID" in err.getvalue()
