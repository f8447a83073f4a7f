"""The App's real review handler (depthgate.app.handlers) end to end: signed deliveries over
HTTP, the queue, the App's token from the fake GitHub's token endpoint, the review through the
fake upstream, one review + one sticky summary + a check run on the fake GitHub. Worker
processes killed before and after posting post exactly once."""

from __future__ import annotations

import html
import json
import logging
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from depthgate.app import App
from depthgate.app.auth import AppAuthenticator, RepoRef
from depthgate.app.handlers import register
from depthgate.app.metrics import Metrics
from depthgate.app.queue import load_repo_config
from depthgate.app.server import create_app
from depthgate.app.settings import AppSettings
from depthgate.configfile import load_config
from depthgate.core.routes import Tier
from depthgate.github.client import GitHubSettings, PullRequestClient
from tests.app.harness import Harness
from tests.app.helpers import LiveServer, body_of, headers, pr_payload, wait_for, worker
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import FILES, OUTSIDERS, UTIL_V2, routes
from tests.fakes.upstream import Behavior, FakeUpstream, error
from tests.markdown_oracle import render

APP_ID = 4242
REPO, N = "octo/repo", 7
H1, H2 = "a" * 40, "b" * 40
KEY = "sk-canary-gateway-key-0123456789abcdef"
PLAIN_SECRET = "correct horse battery staple"  # noqa: S105 - a canary with no credential shape


@dataclass
class World:
    gh: FakeGitHub
    up: FakeUpstream
    harness: Harness
    repo_id: int
    routes_path: Path

    def payload(self, head: str = H1, **kw: Any) -> dict[str, Any]:
        return pr_payload(repo=REPO, number=N, head=head, repo_id=self.repo_id, **kw)

    def check_runs(self, head: str = H1) -> list[dict[str, Any]]:
        return self.gh.check_runs(REPO, head)


@pytest.fixture
def world(
    settings: AppSettings,
    rsa_keys: tuple[str, str],
    fake: FakeUpstream,
    tmp_path: Path,
) -> Iterator[World]:
    fake.default = Behavior(echo_finding=True)
    routes_path = tmp_path / "routes.yaml"
    routes_path.write_text(routes())
    with serve_github() as gh:
        gh.add_app(APP_ID, public_key=rsa_keys[1], slug="depthgate")
        gh.add_installation(11, app_id=APP_ID, account="octo")
        gh.add_pull(REPO, N, head_sha=H1, files=FILES)
        repo_id = int(gh.add_repo(REPO)["id"])
        auth = AppAuthenticator(str(APP_ID), rsa_keys[0], api_url=gh.url, write_interval_s=0)
        app = App()
        register(app)
        # as AppSettings.from_env reads them at startup: the handler never reads os.environ
        env = {
            "DEPTHGATE_GATEWAY_URL": fake.url,
            "DEPTHGATE_GATEWAY_KEY": KEY,
            "DEPTHGATE_WEBHOOK_SECRET": PLAIN_SECRET,
        }
        h = Harness(replace(settings, api_url=gh.url, env=env), app, auth=auth)
        h.config = load_config(str(routes_path))
        try:
            yield World(gh, fake, h, repo_id, routes_path)
        finally:
            h.close()
        assert not gh.errors


def test_a_delivery_becomes_one_review_one_summary_and_a_check_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    h, gh = world.harness, world.gh
    assert h.deliver(world.payload()) == "queued"
    with caplog.at_level(logging.INFO, logger="depthgate.app"):
        h.drain()
    # progress: each task's end at INFO, with its alias, tier, hunks, status and latency
    done = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and " -> " in r.getMessage()
    ]
    assert len(done) == 3
    assert all(
        re.search(r"-> review-\w+ \(\w+, \d hunks?\): reviewed in \d+\.\d s", m) for m in done
    )
    (review,) = gh.reviews(REPO, N)
    assert review["commit_id"] == H1
    assert [r.body["event"] for r in gh.requests if r.path.endswith("/reviews")] == ["COMMENT"]
    (summary,) = gh.issue_comments(REPO, N)
    assert summary["user"]["login"] == "depthgate[bot]"
    (check,) = world.check_runs()
    assert (check["name"], check["status"], check["conclusion"]) == (
        "depthgate",
        "completed",
        "success",
    )
    assert "| alias | hunks |" in check["output"]["summary"]
    assert all(r.status < 400 for r in gh.requests)
    # /metrics counts the gateway calls by alias and error class, and the GitHub writes by kind
    metrics = h.metrics.render().decode()
    assert 'depthgate_gateway_calls_total{alias="review-deep",error_class="none"} 1.0' in metrics
    assert 'depthgate_gateway_calls_total{alias="review-fast",error_class="none"} 2.0' in metrics
    for kind, n in (("check_run", 2), ("review", 1), ("summary", 1)):
        assert f'depthgate_github_writes_total{{kind="{kind}"}} {n}.0' in metrics
    # the token asked for one repository and nothing more than the review needs
    (mint,) = [r for r in gh.requests if r.path.endswith("/access_tokens")]
    assert mint.body["repository_ids"] == [world.repo_id]


def test_the_same_head_under_a_new_delivery_is_not_reviewed_again(world: World) -> None:
    h, gh = world.harness, world.gh
    h.deliver(world.payload(), delivery="first")
    h.drain()
    h.deliver(world.payload(), delivery="second")  # a new delivery id, the same head
    h.drain()
    assert len(gh.reviews(REPO, N)) == 1
    assert len(gh.issue_comments(REPO, N)) == 1
    assert len(world.up.calls()) == 3  # the first review's three tasks, nothing more


def test_a_new_push_reviews_only_what_changed(world: World) -> None:
    h, gh, up = world.harness, world.gh, world.up
    h.deliver(world.payload())
    h.drain()
    first_calls = len(up.calls())
    gh.push(REPO, N, H2, [FILES[0], UTIL_V2, FILES[2]])
    h.deliver(world.payload(H2, action="synchronize", updated_at="2026-01-02T00:00:00Z"))
    h.drain()
    assert len(up.calls()) == first_calls + 1
    assert [r["commit_id"] for r in gh.reviews(REPO, N)] == [H1, H2]
    assert len(gh.issue_comments(REPO, N)) == 1
    (check,) = world.check_runs(H2)
    assert check["conclusion"] == "success"


def test_a_gateway_failure_fails_the_check_run_with_the_handoff(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.up.default = error(401, "Invalid API key", type_="auth_error")
    world.harness.deliver(world.payload())
    with caplog.at_level(logging.INFO, logger="depthgate.app"):
        world.harness.drain()
    # the operator's log says why and what to do, above INFO
    (warning,) = [r for r in caplog.records if "review incomplete" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "auth from review-" in warning.getMessage()
    assert "0/3 hunks reviewed. Next: The gateway rejected the credentials" in warning.getMessage()
    assert world.gh.reviews(REPO, N) == []
    assert world.gh.issue_comments(REPO, N) == []
    (check,) = world.check_runs()
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert "## depthgate: review failed" in check["output"]["summary"]
    assert "**auth** from alias" in check["output"]["summary"]
    metrics = world.harness.metrics.render().decode()
    calls = [ln for ln in metrics.splitlines() if ln.startswith("depthgate_gateway_calls_total")]
    # every alias is probed at once; the auth answers stop the run before any other call
    assert calls == [
        'depthgate_gateway_calls_total{alias="review-deep",error_class="auth"} 1.0',
        'depthgate_gateway_calls_total{alias="review-fast",error_class="auth"} 1.0',
    ]
    assert KEY not in json.dumps(check)


def test_a_github_5xx_is_retried_and_posts_once(world: World) -> None:
    world.gh.fail_next("POST", r"/pulls/\d+/reviews$", 502)
    world.harness.deliver(world.payload())
    world.harness.drain()
    assert len(world.gh.reviews(REPO, N)) == 1
    assert len(world.gh.issue_comments(REPO, N)) == 1
    # the retry completed the check run its first attempt started: one, none in progress
    assert [(c["status"], c["conclusion"]) for c in world.check_runs()] == [
        ("completed", "success")
    ]


def test_a_job_that_fails_for_good_marks_the_check_run(world: World) -> None:
    world.gh.fail_next("POST", r"/pulls/\d+/reviews$", 502, times=10)
    world.harness.deliver(world.payload())
    world.harness.drain()
    assert world.gh.reviews(REPO, N) == []
    (only,) = world.check_runs()  # every attempt used the first one; the failure completed it
    assert (only["status"], only["conclusion"]) == ("completed", "failure")
    assert "gave up after" in only["output"]["summary"]


def test_the_gave_up_check_run_redacts_this_servers_secrets_by_value(world: World) -> None:
    # GitHub's answer quotes a secret of this server (a proxy that echoes what it was sent): the
    # error holds it, and it has no credential shape for the shape scan to catch
    body = {"message": f"Server Error near {PLAIN_SECRET}"}
    world.gh.fail_next("POST", r"/pulls/\d+/reviews$", 502, body=body, times=10)
    world.harness.deliver(world.payload())
    world.harness.drain()
    (only,) = world.check_runs()
    summary = only["output"]["summary"]
    assert "gave up after" in summary
    assert "Server Error near" in summary
    assert PLAIN_SECRET not in json.dumps(only)


def test_a_job_whose_workers_all_died_completes_the_check_run_they_started(
    world: World, settings: AppSettings
) -> None:
    h, gh = world.harness, world.gh
    h.deliver(world.payload())
    # the first attempt started the check run, then its worker died; so did every other's
    auth = h.runner.auth
    assert auth is not None
    client = PullRequestClient(
        REPO,
        N,
        GitHubSettings(token="", api_url=gh.url),
        github=auth.client(11, RepoRef(REPO, world.repo_id)),
    )
    client.start_check_run("depthgate", H1)
    for _ in range(settings.retry.max_attempts):
        task = h.queue.huey.dequeue()
        h.queue.store.claim(task.args[0], h.clock(), settings.lease_s)
        h.clock.now += settings.lease_s + 1
        h.reaper.reap_once()
    h.drain()
    (only,) = world.check_runs()
    assert (only["status"], only["conclusion"]) == ("completed", "failure")
    assert "stopped on every attempt" in only["output"]["summary"]


@pytest.mark.parametrize(
    ("installation", "status", "said"),
    [
        (99, 404, "the App is not installed on octo/repo (installation 99)"),
        (12, 422, "the repository is not in the installation"),
    ],
    ids=["not-installed", "repo-not-in-installation"],
)
def test_a_refused_installation_token_fails_the_job_at_once(
    world: World, installation: int, status: int, said: str
) -> None:
    # installation 12 exists but holds another repository only
    world.gh.add_installation(12, app_id=APP_ID, account="octo", repositories=["octo/other"])
    h, gh = world.harness, world.gh
    h.deliver(world.payload(installation=installation))
    (key,) = set(h.drain())
    mints = [r for r in gh.requests if r.path.endswith("/access_tokens")]
    assert [r.status for r in mints] == [status]  # asked once, not once per attempt
    record = h.queue.store.record(key)
    assert record is not None
    assert (record.state, record.attempts) == ("failed", 1)
    assert said in (record.error or "")
    assert gh.reviews(REPO, N) == []
    assert world.check_runs() == []


def test_a_late_delivery_for_an_old_head_never_labels_it_with_the_new_heads_review(
    world: World,
) -> None:
    h, gh = world.harness, world.gh
    # the PR moved to H2 before the (late) delivery for H1 was run
    gh.push(REPO, N, H2, [FILES[0], UTIL_V2, FILES[2]])
    h.deliver(world.payload(H1))
    h.drain()
    (old,) = world.check_runs(H1)
    assert (old["status"], old["conclusion"]) == ("completed", "neutral")
    assert old["output"]["title"] == "Superseded by a newer push"
    assert "comments on" not in old["output"]["title"]
    assert world.check_runs(H2) == []  # no check run of another head was touched
    # the newer head's own delivery labels its own check run
    h.deliver(world.payload(H2, action="synchronize", updated_at="2026-01-02T00:00:00Z"))
    h.drain()
    (new,) = world.check_runs(H2)
    assert (new["status"], new["conclusion"]) == ("completed", "success")
    assert world.check_runs(H1) == [old]


# --------------------------------------------------------------------------------------------
# Worker processes, killed


@contextmanager
def review_worker(
    settings: AppSettings, world: World, tmp: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process running the real review handler against the fakes."""
    with worker(
        settings,
        tmp,
        handlers="depthgate.app.handlers",
        args=("--config", str(world.routes_path), "--workers", "1"),
        DEPTHGATE_GATEWAY_URL=world.up.url,
        DEPTHGATE_GATEWAY_KEY=KEY,
        GITHUB_API_URL=world.gh.url,
    ) as proc:
        yield proc


def posted_reviews(gh: FakeGitHub) -> int:
    return sum(1 for r in gh.requests if r.path.endswith("/reviews") and r.status == 200)


def deliver_over_http(world: World, settings: AppSettings) -> None:
    app = App()
    register(app)
    body = body_of(world.payload())
    with (
        LiveServer(create_app(app, world.harness.queue, settings, Metrics())) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        answer = client.post("/webhook", content=body, headers=headers(body))
    assert answer.status_code == 202


@pytest.mark.parametrize("moment", ["after_posting", "before_posting"])
def test_a_worker_killed_mid_review_posts_exactly_once(
    world: World, settings: AppSettings, tmp_path: Path, moment: str
) -> None:
    gh, up = world.gh, world.up
    if moment == "before_posting":
        up.default = Behavior(echo_finding=True, hang=True)  # stuck in the gateway call
    deliver_over_http(world, settings)
    with review_worker(settings, world, tmp_path) as first:
        if moment == "after_posting":
            # the review is on GitHub; the summary (a second, spaced write) is not yet
            wait_for("the review to be posted", lambda: posted_reviews(gh) == 1)
        else:
            wait_for("a gateway call", lambda: len(up.calls()) > 0)
        first.kill()  # SIGKILL: no cleanup, no acknowledgement
        first.wait(timeout=10)
    assert gh.issue_comments(REPO, N) == []  # killed before its summary
    up.default = Behavior(echo_finding=True)
    with review_worker(settings, world, tmp_path):
        wait_for("the summary", lambda: len(gh.issue_comments(REPO, N)) == 1, 60)
        wait_for("the check run", lambda: world.check_runs()[-1]["status"] == "completed", 60)
    assert posted_reviews(gh) == 1
    assert len(gh.reviews(REPO, N)) == 1
    assert len(gh.issue_comments(REPO, N)) == 1
    # the retried job completed the check run the killed one started: none left in progress
    assert [(c["status"], c["conclusion"]) for c in world.check_runs()] == [
        ("completed", "success")
    ]


# --- the repository's config (design §10): the default branch chooses review behaviour only ---

SECRET = "whsec-canary-webhook-secret-0123456789"  # noqa: S105 - a canary
HOSTILE = """\
version: 1
gateway:
  base_url_env: null
  base_url: {url}
  headers_env: {{X-Leak: DEPTHGATE_WEBHOOK_SECRET}}
  api_key_env: DEPTHGATE_GATEWAY_KEY
routes:
  review-fast: {{send_model: attacker-picked, max_input_tokens: 12000, max_output_tokens: 1200}}
  review-deep: {{send_model: attacker-picked, max_input_tokens: 99000, max_output_tokens: 4000}}
tiers: {{fast: review-fast, logic: review-fast, deep: review-fast}}
"""


@contextmanager
def attacker() -> Iterator[FakeUpstream]:
    """A listener on 127.0.0.1 that records anything sent to it."""
    server = FakeUpstream().start()
    try:
        yield server
    finally:
        server.stop()


def use_repository_config(world: World) -> None:
    world.harness.app.config_loader = None  # the real loader: the default branch via GitHub
    world.harness.runner.server_config = world.harness.config


def test_a_repository_config_cannot_redirect_the_gateway_or_read_server_variables(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPTHGATE_WEBHOOK_SECRET", SECRET)
    use_repository_config(world)
    with attacker() as evil:
        world.gh.add_contents(
            REPO, ".github/gateway-routes.yaml", HOSTILE.format(url=evil.url), ref="main"
        )
        world.harness.deliver(world.payload())
        world.harness.drain()
        assert evil.requests == []
    calls = world.up.calls()
    assert calls, "the operator's gateway reviewed the PR"
    # its tiers (every depth to review-fast) are a choice it may make; the model that alias
    # sends is the operator's, not the "attacker-picked" of its routes
    assert {c.body["model"] for c in calls} == {"fast-model"}
    for call in calls:
        assert call.headers.get("Authorization") == f"Bearer {KEY}"
        assert SECRET not in json.dumps(call.headers)
    (check,) = world.check_runs()
    assert check["conclusion"] == "success"
    # as GitHub shows it: the notes are escaped text (the repository's name is data)
    text = visible_text(check["output"]["summary"])
    assert f"{REPO}@main:.github/gateway-routes.yaml: gateway: ignored" in text
    assert "routes: ignored" in text
    assert "tiers." not in text  # its tiers name the operator's aliases: they are not refused
    (summary,) = world.gh.issue_comments(REPO, N)
    assert "gateway: ignored" in summary["body"]


def visible_text(markdown: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", render(markdown)))


def test_the_app_reads_the_same_paths_as_the_action_in_the_same_order(world: World) -> None:
    use_repository_config(world)
    world.gh.add_contents(REPO, ".github/gateway-routes.yaml", "limits: {max_comments: 2}\n")
    world.harness.deliver(world.payload())
    world.harness.drain()
    assert len(world.gh.review_comments(REPO, N)) == 2  # .github/ alone: read (it was before)
    world.gh.add_contents(REPO, "gateway-routes.yaml", "limits: {max_comments: 1}\n")
    world.gh.push(REPO, N, H2, [FILES[0], UTIL_V2, FILES[2]])
    world.harness.deliver(
        world.payload(H2, action="synchronize", updated_at="2026-01-02T00:00:00Z")
    )
    world.harness.drain()
    second = world.gh.reviews(REPO, N)[-1]
    new = [
        c for c in world.gh.review_comments(REPO, N) if c["pull_request_review_id"] == second["id"]
    ]
    assert len(new) == 1  # the root file first, as the Action and the CLI read it
    (check,) = world.check_runs(H2)
    assert check["conclusion"] == "success"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "anchors and aliases",
        ),
        ("limits: " + "[" * 100_000 + "]" * 100_000, "200,008 bytes, over the 65,536-byte limit"),
        ("limits: " + "[" * 30_000 + "]" * 30_000, "nested more than 32 levels"),
    ],
    ids=["billion-laughs", "100000-deep", "30000-deep-under-the-size-cap"],
)
def test_a_hostile_yaml_config_fails_the_check_run_at_once(
    world: World, text: str, message: str
) -> None:
    use_repository_config(world)
    world.gh.add_contents(REPO, "gateway-routes.yaml", text, ref="main")
    world.harness.deliver(world.payload())
    world.harness.drain()
    assert world.up.calls() == []
    assert world.gh.reviews(REPO, N) == []
    assert world.gh.issue_comments(REPO, N) == []
    (check,) = world.check_runs()
    assert check["conclusion"] == "failure"
    summary = check["output"]["summary"]
    assert f"{REPO}@main:gateway-routes.yaml:" in summary
    assert message in summary
    # failed for good on the first attempt (no retry can fix a config): read once, in one query
    assert len([r for r in world.gh.requests if r.path == "/graphql"]) == 1


# --- Re-run (design §11): after an outage, one press posts the missing review, once -----------


def _rerequested(world: World, check: dict[str, Any], *, suite: bool = False) -> dict[str, Any]:
    p = world.payload()
    pr = {"number": N, "head": {"sha": H1, "ref": "feature"}, "base": {"sha": "b" * 40}}
    body = {
        "id": check["id"],
        "name": check["name"],
        "head_sha": check["head_sha"],
        "status": check["status"],
        "conclusion": check["conclusion"],
        "pull_requests": [pr],
        "app": {"id": APP_ID, "slug": "depthgate"},
    }
    out = {k: p[k] for k in ("repository", "installation", "sender")}
    out["action"] = "rerequested"
    if suite:
        out["check_suite"] = {"id": 99, "head_sha": H1, "pull_requests": [pr]}
    else:
        out["check_run"] = body
    return out


def test_rerun_after_an_outage_posts_the_review_once_on_the_same_check_run(world: World) -> None:
    gh, h = world.gh, world.harness
    world.up.default = error(401, "Invalid API key", type_="auth_error")
    h.deliver(world.payload())
    h.drain()
    (failed,) = world.check_runs()
    assert failed["conclusion"] == "failure"
    assert gh.reviews(REPO, N) == []
    # the gateway is back; redelivering the PR event does not re-run a head already done...
    world.up.default = Behavior(echo_finding=True)
    h.deliver(world.payload())
    h.drain()
    assert gh.reviews(REPO, N) == []
    # ... Re-run on the check does: one review, one summary, the same check run completed
    writes = len(gh.writes())
    h.deliver(_rerequested(world, failed), event="check_run")
    h.drain()
    assert len(gh.reviews(REPO, N)) == 1
    assert len(gh.issue_comments(REPO, N)) == 1
    (check,) = world.check_runs()
    assert check["id"] == failed["id"]
    assert (check["status"], check["conclusion"]) == ("completed", "success")
    kinds = [(r.method, r.path.rsplit("/", 2)[-2]) for r in gh.writes()[writes:]]
    assert kinds.count(("PATCH", "check-runs")) == 2  # back in progress, then completed
    # a second press finds nothing new: no review, no comment, the check run says so
    h.deliver(_rerequested(world, check), event="check_run")
    h.drain()
    assert len(gh.reviews(REPO, N)) == 1
    assert len(gh.issue_comments(REPO, N)) == 1
    (again,) = world.check_runs()
    assert (again["conclusion"], again["output"]["title"]) == ("success", "Nothing new to review")


def test_rerun_of_the_suite_completes_depthgates_check_run(world: World) -> None:
    world.up.default = error(401, "Invalid API key", type_="auth_error")
    world.harness.deliver(world.payload())
    world.harness.drain()
    (failed,) = world.check_runs()
    world.up.default = Behavior(echo_finding=True)
    world.harness.deliver(_rerequested(world, failed, suite=True), event="check_suite")
    world.harness.drain()
    assert len(world.gh.reviews(REPO, N)) == 1
    (check,) = world.check_runs()
    assert (check["id"], check["conclusion"]) == (failed["id"], "success")


def test_rerun_of_another_apps_check_writes_nothing(world: World) -> None:
    world.harness.deliver(world.payload())
    world.harness.drain()
    (check,) = world.check_runs()
    writes = len(world.gh.writes())
    other = _rerequested(world, {**check, "name": "lint"})
    world.harness.deliver(other, event="check_run")
    world.harness.drain()
    assert len(world.gh.writes()) == writes


def test_a_skip_rule_is_a_neutral_check_run_and_nothing_else(world: World) -> None:
    payload = world.payload()
    payload["pull_request"]["labels"] = [{"name": "no-depthgate", "id": 1}]
    world.harness.deliver(payload)
    world.harness.drain()
    assert world.up.calls() == []
    assert world.gh.reviews(REPO, N) == []
    assert world.gh.issue_comments(REPO, N) == []
    (check,) = world.check_runs()
    assert (check["status"], check["conclusion"]) == ("completed", "neutral")
    assert "label no-depthgate" in check["output"]["summary"]


# --- /depthgate commands (design §11): who may run them, and what each does ------------------


def _comment(world: World, body: str, login: str, association: str) -> dict[str, Any]:
    seeded = world.gh.seed_issue_comment(REPO, N, body, user_login=login)
    p = world.payload()
    out = {k: p[k] for k in ("repository", "installation", "sender")}
    out["action"] = "created"
    out["issue"] = {"number": N, "pull_request": {"url": f"https://api.github.test/{REPO}/{N}"}}
    out["comment"] = {
        "id": seeded["id"],
        "body": body,
        "user": {"login": login, "type": "User"},
        "author_association": association,
    }
    return out


def test_a_maintainers_review_command_posts_the_review_once(world: World) -> None:
    gh, h = world.gh, world.harness
    world.up.default = error(401, "Invalid API key", type_="auth_error")
    h.deliver(world.payload())
    h.drain()
    assert gh.reviews(REPO, N) == []
    world.up.default = Behavior(echo_finding=True)
    gh.add_collaborator(REPO, "maria", "maintain")
    h.deliver(_comment(world, "/depthgate review", "maria", "MEMBER"), event="issue_comment")
    h.drain()
    assert len(gh.reviews(REPO, N)) == 1
    assert [r["content"] for r in gh.reactions] == ["eyes"]
    # again: nothing new, no second review; --full reviews every hunk, posts no duplicate
    h.deliver(_comment(world, "/depthgate review", "maria", "MEMBER"), event="issue_comment")
    h.deliver(_comment(world, "/depthgate review --full", "maria", "MEMBER"), event="issue_comment")
    calls = len(world.up.calls())
    h.drain()
    assert len(world.up.calls()) > calls  # --full sent the hunks again
    assert len(gh.reviews(REPO, N)) == 1  # and every finding was already on the PR


@pytest.mark.parametrize(
    ("login", "association", "role"),
    [*OUTSIDERS, ("depthgate[bot]", "NONE", None)],
)
def test_an_outsiders_command_does_nothing_visible(
    world: World, login: str, association: str, role: str | None
) -> None:
    if role:
        world.gh.add_collaborator(REPO, login, role)

    def repo_writes() -> int:  # minting an installation token writes nothing to the repository
        return len([w for w in world.gh.writes() if w.path.startswith("/repos/")])

    writes = repo_writes()
    payload = _comment(world, "/depthgate review --full", login, association)
    world.harness.deliver(payload, event="issue_comment")
    world.harness.drain()
    assert repo_writes() == writes
    assert world.up.calls() == []
    assert world.gh.reactions == []


def test_help_plan_and_unknown_commands_are_answered(world: World) -> None:
    gh, h = world.gh, world.harness
    for body in ("/depthgate help", "/depthgate plan", "/depthgate reveiw"):
        h.deliver(_comment(world, body, "octocat", "OWNER"), event="issue_comment")
    h.deliver(_comment(world, "thanks, looks good", "octocat", "OWNER"), event="issue_comment")
    h.drain()
    replies = [c["body"] for c in gh.issue_comments(REPO, N) if "command-reply" in c["body"]]
    assert len(replies) == 3
    assert "| `/depthgate review --full` |" in replies[0]
    assert "depthgate plan" in replies[1]
    assert "review-deep" in replies[1]
    assert replies[2].startswith("That is not a depthgate command.")
    assert world.up.calls() == []
    assert len(gh.reactions) == 3


# --- replies in depthgate's threads (design §11) ------------------------------------------------


def _reply_payload(world: World, reply: dict[str, Any]) -> dict[str, Any]:
    p = world.payload()
    out = {k: p[k] for k in ("repository", "installation", "sender", "pull_request")}
    out["action"] = "created"
    out["comment"] = {
        "id": reply["id"],
        "in_reply_to_id": reply["in_reply_to_id"],
        "body": reply["body"],
        "user": {"login": reply["user"]["login"], "type": reply["user"]["type"]},
    }
    return out


def test_a_reply_in_a_depthgate_thread_is_answered_once_by_its_tiers_alias(
    world: World,
) -> None:
    gh, h, up = world.gh, world.harness, world.up
    h.deliver(world.payload())
    h.drain()
    root = next(c for c in gh.review_comments(REPO, N) if "tier=" in c["body"])
    tier = re.search(r"tier=(\w+)", root["body"])
    assert tier is not None
    config = world.harness.config.config
    alias = config.routes[config.tiers.alias(Tier(tier[1]))].send_model
    up.default = Behavior(content='{"reply": "Because `x` is read before the check @all."}')
    before = len(up.calls())
    human = gh.add_review_reply(REPO, N, root["id"], "Why is this a problem?", "alice")
    h.deliver(_reply_payload(world, human), event="pull_request_review_comment")
    h.drain()
    answers = [c for c in gh.review_comments(REPO, N) if "depthgate:reply" in c["body"]]
    assert len(answers) == 1
    assert answers[0]["in_reply_to_id"] == root["id"]
    assert "Because" in answers[0]["body"]
    assert "@all" not in answers[0]["body"].replace("`@all`", "")  # no live mention
    (call,) = up.calls()[before:]
    assert call.body is not None
    assert call.body["model"] == alias
    assert "Why is this a problem?" in json.dumps(call.body["messages"])
    # depthgate's own answer arrives as an event too: never answered
    h.deliver(_reply_payload(world, answers[0]), event="pull_request_review_comment")
    h.drain()
    assert len([c for c in gh.review_comments(REPO, N) if "depthgate:reply" in c["body"]]) == 1


def test_replies_outside_depthgates_threads_or_past_the_budget_get_no_answer(
    world: World,
) -> None:
    gh, h, up = world.gh, world.harness, world.up
    h.deliver(world.payload())
    h.drain()
    root = next(c for c in gh.review_comments(REPO, N) if "tier=" in c["body"])
    up.default = error(500, "upstream down")
    failing = gh.add_review_reply(REPO, N, root["id"], "Really?", "alice")
    h.deliver(_reply_payload(world, failing), event="pull_request_review_comment")
    h.drain()  # the gateway failed: logged, nothing posted
    assert not [c for c in gh.review_comments(REPO, N) if "depthgate:reply" in c["body"]]
    up.default = Behavior(content='{"reply": "ok"}')
    for n in range(12):  # the default budget is 10 an hour
        more = gh.add_review_reply(REPO, N, root["id"], f"question {n}", "alice")
        h.deliver(_reply_payload(world, more), event="pull_request_review_comment")
        h.drain()
    answered = [c for c in gh.review_comments(REPO, N) if "depthgate:reply" in c["body"]]
    assert len(answered) == 10


def test_the_default_branchs_guidelines_reach_the_deep_task_and_not_the_fast_ones(
    world: World,
) -> None:
    world.gh.add_contents(
        REPO, "AGENTS.md", "Base rule: every handler checks the tenant.\n", ref="main"
    )
    h = world.harness
    # the server's own loader (the harness's stand-in skips the repository's read)
    h.app.config_loader = lambda job, github: load_repo_config(job, github, h.config)
    h.deliver(world.payload())
    h.drain()
    calls = [(c.body["model"], c.body["messages"][1]["content"]) for c in world.up.calls()]
    deep = [text for model, text in calls if model == "deep-model"]
    fast = [text for model, text in calls if model == "fast-model"]
    assert deep
    assert fast
    assert all("[from AGENTS.md]\nBase rule: every handler" in text for text in deep)
    assert not any("Base rule" in text for text in fast)
