"""PR, model and gateway text that tries to break out of what depthgate writes (issue #10 item 3,
threats.md "More bad inputs"), end to end: ``review --pr`` and the Action against the fake
GitHub and the fake upstream over real HTTP. Everything that would be posted -- the sticky
summary, each inline comment, the job summary, the handoff Markdown -- is rendered by GitHub's
own cmark-gfm (tests/markdown_oracle.py) and must show no live mention, no HTML but
depthgate's own, no link outside the repository and no secret; the machine outputs (``--format
json``, the handoff file, stdout, stderr) hold no secret either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.upstream import Behavior, FakeUpstream, error
from tests.markdown_oracle import problems, render
from tests.test_action_e2e import Action

REPO, N, HEAD = "octo/app", 7, "1" * 40
KEY = "sk-canary-gateway-key-0123456789abcdef"
TOKEN = "ghs_canary_token_for_the_fake_github"  # noqa: S105 - a canary, not a credential
BAD = "`@victim` <img src=https://evil.example/b.png> [x](https://evil.example) <!-- c --> \u202e"
BINARY = "docs/x` @victim <img src=https://evil.example/p.png> `y.png"
FN = "def f(): `@victim` <img src=https://evil.example/h.png> [x](https://evil.example) ``y``"
INJECTED = "::error title=pwned::"  # a file name's second line: a workflow command
MODEL_PATH = "src/`@victim` <img src=https://evil.example/q.png> ``x``.py"
FILES: list[dict[str, Any]] = [
    {"filename": f"docs/evil\n{INJECTED}x.png", "status": "added", "changes": 0},
    {"filename": BINARY, "status": "added", "additions": 0, "deletions": 0, "changes": 0},
    {
        "filename": "app/util.py",
        "status": "modified",
        "patch": f"@@ -10,3 +10,4 @@ {FN}\n a = 1\n+b = 2\n c = 3\n d = 4",
    },
    {
        "filename": "app/auth.py",
        "status": "modified",
        "patch": f"@@ -1,2 +1,4 @@ {FN}\n import os\n+def run(cmd):\n+    return os.system(cmd)\n"
        " x = 1",
    },
]
ROUTES = """\
version: 1
gateway: {base_url_env: DEPTHGATE_GATEWAY_URL, api_key_env: DEPTHGATE_GATEWAY_KEY,
          retry: {attempts: 2, max_retry_after_s: 30, budget_s: 60}}
routes:
  review-fast: {send_model: fast-model, max_input_tokens: 12000, max_output_tokens: 1200}
  review-deep: {send_model: deep-model, max_input_tokens: 100000, max_output_tokens: 4000}
tiers: {fast: review-fast, logic: review-fast, deep: review-deep}
escalation: {enabled: true, max_hunks: 10}
"""


def hostile_answer() -> Behavior:
    """A fast model that obeys an injection: the gateway key in every field, mentions, images,
    links and backticks in paths, titles, bodies and its escalation reason."""
    leak = f"{KEY} {BAD} @octocat /approve"
    findings = [
        {  # on the diff: an inline comment
            "path": "app/util.py",
            "line": 11,
            "side": "RIGHT",
            "severity": "high",
            "category": "security",
            "title": f"Leak {leak}",
            "body": f"Body {leak}\n\n![i](https://evil.example/i.png)",
        },
        {  # a path that is not in the PR: listed in the summary, path and all
            "path": MODEL_PATH,
            "line": 3,
            "side": "RIGHT",
            "severity": "medium",
            "category": "bug",
            "title": f"Elsewhere {leak}",
            "body": f"Also {leak}",
        },
    ]
    escalate = [{"path": "app/util.py", "line": 11, "reason": f"needs depth {leak}"}]
    return Behavior(content=json.dumps({"findings": findings, "escalate": escalate}))


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with serve_github() as fake:
        fake.add_token(TOKEN, write=True)
        fake.add_pull(REPO, N, head_sha=HEAD, files=FILES, title=f"Title {BAD}", body=BAD)
        yield fake
        assert not fake.errors


def review_pr(
    gh: FakeGitHub,
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, dict[str, Any], str, Path]:
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(ROUTES)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", KEY)
    monkeypatch.setenv("GITHUB_API_URL", gh.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
    monkeypatch.setenv("DEPTHGATE_BOT_LOGIN", "github-actions[bot]")
    handoff = tmp_path / "handoff.json"
    argv = ["review", "--pr", f"{REPO}#{N}", "--config", str(cfg), "--format", "json"]
    code = main([*argv, "--handoff", str(handoff)])
    out, err = capsys.readouterr()
    return code, json.loads(out), err, handoff


def assert_posts_are_safe(gh: FakeGitHub) -> str:
    """Every body GitHub received renders clean; returns the renderings of the summaries."""
    summaries = gh.issue_comments(REPO, N)
    for summary in summaries:
        assert problems(summary["body"], repo=REPO, secrets=(KEY, TOKEN)) == []
    for comment in gh.review_comments(REPO, N):
        assert problems(comment["body"], repo=REPO, secrets=(KEY, TOKEN)) == []
    for review in gh.reviews(REPO, N):
        assert problems(review.get("body") or "", repo=REPO, secrets=(KEY, TOKEN)) == []
    return "".join(render(s["body"]) for s in summaries)


def test_hostile_names_headers_and_model_fields_are_shown_as_text_in_the_summary(
    gh: FakeGitHub,
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.script("fast-model", hostile_answer())
    fake.script("deep-model", Behavior(echo_finding=True))
    code, doc, err, _ = review_pr(gh, fake, tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert len(gh.issue_comments(REPO, N)) == 1
    assert gh.review_comments(REPO, N)
    html = assert_posts_are_safe(gh)
    # nothing was dropped to get there: each hostile piece is on the page, as code
    assert html.count("@victim") >= 3  # the binary file, the escalated hunk's header, the path
    assert "<code>docs/x` @victim &lt;img src=https://evil.example/p.png&gt; `y.png</code>" in html
    assert "needs depth [REDACTED]" in html
    assert doc["escalations"]
    assert "[REDACTED]" in doc["escalations"][0]["reason"]
    everything = json.dumps(doc, ensure_ascii=False) + err
    assert KEY not in everything
    assert TOKEN not in everything


def test_a_failed_hunk_with_a_hostile_header_keeps_the_handoff_clean(
    gh: FakeGitHub,
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.script("fast-model", hostile_answer())
    fake.script("deep-model", error(500, f"upstream failed for {KEY} @victim <img src=x>"))
    code, doc, err, handoff = review_pr(gh, fake, tmp_path, monkeypatch, capsys)
    assert code == 3
    note = json.loads(handoff.read_text())
    assert note["hunks"]["failed"]
    assert all("`@victim`" in f["header"] for f in note["hunks"]["failed"])
    # the handoff Markdown (stderr here; the job summary and the check run in Actions and the
    # App) renders clean, and shows the failed hunk's header as code
    markdown = err[err.index("## depthgate: review") :]
    assert problems(markdown, repo=REPO, secrets=(KEY, TOKEN)) == []
    assert "<code>@@ -10,3 +10,4 @@ def f(): `@victim`" in render(markdown)
    assert_posts_are_safe(gh)  # the partial review and its summary
    everything = handoff.read_text() + json.dumps(doc, ensure_ascii=False) + err
    assert KEY not in everything
    assert TOKEN not in everything
    assert "[REDACTED]" in json.dumps(note["escalations"])


@pytest.fixture
def action(gh: FakeGitHub, fake: FakeUpstream, tmp_path: Path) -> Action:
    run = Action(gh, fake, tmp_path)
    (tmp_path / "routes.yaml").write_text(ROUTES)
    run.env["GITHUB_TOKEN"] = TOKEN
    return run


def test_the_actions_job_summary_and_annotations_are_safe(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    fake.script("fast-model", hostile_answer())
    fake.script("deep-model", error(500, f"upstream failed for {KEY}"))
    payload = json.loads(
        (Path(__file__).parent / "data/webhooks/pull_request/opened.payload.json").read_text()
    )
    payload["pull_request"]["number"] = N
    payload["pull_request"]["head"]["sha"] = HEAD
    payload["repository"]["full_name"] = REPO
    for side in ("head", "base"):
        payload["pull_request"][side]["repo"]["full_name"] = REPO
    r = action("pull_request", payload)
    assert r.code == 3, r.stderr
    assert problems(r.summary, repo=REPO, secrets=(KEY, TOKEN)) == []
    assert "Not reviewed" in r.summary
    masks = {f"::add-mask::{KEY}", f"::add-mask::{TOKEN}"}
    printed = "\n".join(ln for ln in r.stdout.splitlines() if ln not in masks)
    assert KEY not in printed + r.stderr + r.summary
    assert TOKEN not in printed + r.stderr + r.summary
    # the model's words are printed only where the runner reads no workflow command
    lines = r.stdout.splitlines()
    injected = [i for i, ln in enumerate(lines) if ln.startswith(INJECTED)]
    assert injected, r.stdout
    for i in injected:
        stops = [j for j in range(i) if lines[j].startswith("::stop-commands::")]
        assert stops
        token = lines[stops[-1]].removeprefix("::stop-commands::")
        assert f"::{token}::" not in lines[stops[-1] + 1 : i]  # still stopped at line i
        assert f"::{token}::" in lines[i + 1 :]  # and resumed after
    errors = [ln for ln in lines if ln.startswith("::error") and not ln.startswith(INJECTED)]
    assert errors
    assert "\u202e" not in errors[0]
