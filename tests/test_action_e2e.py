"""The Action's entry point end to end: ``depthgate review`` / ``depthgate smoke`` as a
subprocess with the environment GitHub Actions sets (GITHUB_EVENT_PATH pointing at GitHub's real
payload examples, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP, ...), against the fake GitHub
and the fake upstream. Asserts exactly what GitHub received and what the output and summary files
hold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from depthgate.gateway.smoke import RECORD_FIELDS
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import FILES, UTIL_V2, routes
from tests.fakes.upstream import Behavior, FakeUpstream, answer, error

PAYLOADS = Path(__file__).resolve().parent / "data" / "webhooks" / "pull_request"
DEPTHGATE = Path(sys.executable).parent / "depthgate"
KEY = "sk-canary-gateway-key-0123456789abcdef"
REPO, NUMBER = "Codertocat/Hello-World", 2
HEAD = json.loads((PAYLOADS / "opened.payload.json").read_text())["pull_request"]["head"]["sha"]
H2 = "2" * 40


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT in the heredoc form GitHub parses: name<<DELIM / value / DELIM."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        name, delim = lines[i].split("<<", 1)
        end = lines.index(delim, i + 1)
        out[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return out


class Action:
    def __init__(self, gh: FakeGitHub, up: FakeUpstream, tmp: Path) -> None:
        self.gh, self.up, self.tmp = gh, up, tmp
        (tmp / "routes.yaml").write_text(routes())
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": gh.url,
            "GITHUB_TOKEN": "ghs_test_write",
            "RUNNER_TEMP": str(tmp),
            "DEPTHGATE_CONFIG": str(tmp / "routes.yaml"),
            "DEPTHGATE_GATEWAY_URL": up.url,
            "DEPTHGATE_GATEWAY_KEY": KEY,
            "DEPTHGATE_GITHUB_WRITE_INTERVAL_S": "0",
        }
        self.runs = 0

    def __call__(
        self,
        event_name: str = "pull_request",
        payload: str | dict[str, Any] = "opened.payload.json",
        *args: str,
        command: str = "review",
        **env: str | None,
    ) -> Result:
        self.runs += 1
        if isinstance(payload, dict):
            event = self.tmp / f"event{self.runs}.json"
            event.write_text(json.dumps(payload))
        else:
            event = PAYLOADS / payload
        output = self.tmp / f"output{self.runs}"
        summary = self.tmp / f"summary{self.runs}.md"
        full = {
            **self.env,
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        for name, value in env.items():
            if value is None:
                full.pop(name, None)
            else:
                full[name] = value
        self.gh.requests.clear()
        self.up.requests.clear()
        proc = subprocess.run(
            [str(DEPTHGATE), command, *args],
            env=full,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(
            proc.returncode,
            proc.stdout,
            proc.stderr,
            read_outputs(output),
            summary.read_text() if summary.exists() else "",
        )


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with serve_github() as fake:
        fake.add_pull(REPO, NUMBER, head_sha=HEAD, files=FILES)
        yield fake
        assert not fake.errors


@pytest.fixture
def action(gh: FakeGitHub, fake: FakeUpstream, tmp_path: Path) -> Action:
    fake.default = Behavior(echo_finding=True)
    return Action(gh, fake, tmp_path)


def opened_payload(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / "opened.payload.json").read_text())
    data["pull_request"].update(changes)
    return data


def test_opened_posts_one_review_and_one_summary(action: Action, gh: FakeGitHub) -> None:
    r = action()
    assert r.code == 0, r.stderr
    # secrets are masked before anything else is printed
    lines = r.stdout.splitlines()
    assert lines[:2] == ["::add-mask::ghs_test_write", f"::add-mask::{KEY}"]
    assert "::group::depthgate: routing plan" in lines
    assert "::endgroup::" in lines
    posts = [(q.method, q.path) for q in gh.writes()]
    assert posts == [
        ("POST", f"/repos/{REPO}/pulls/{NUMBER}/reviews"),
        ("POST", f"/repos/{REPO}/issues/{NUMBER}/comments"),
    ]
    assert all(q.status < 400 for q in gh.requests)
    review = gh.writes()[0].body
    assert review["event"] == "COMMENT"
    assert review["commit_id"] == HEAD
    assert r.outputs == {
        "comments-posted": str(len(review["comments"])),
        "hunks-reviewed": "3",
        "hunks-failed": "0",
        "handoff-path": "",
        "smoke-report-path": "",
    }
    assert "| alias | hunks | calls |" in r.summary
    assert "depthgate:summary" not in r.summary  # the marker is for the PR only
    masked = f"::add-mask::{KEY}\n"
    assert KEY not in r.stdout.replace(masked, "") + r.stderr + r.summary


def test_synchronize_rereviews_only_the_changed_hunk(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    assert action().code == 0
    first = len(gh.review_comments(REPO, NUMBER))
    gh.push(REPO, NUMBER, H2, [FILES[0], UTIL_V2, FILES[2]])
    r = action("pull_request", "synchronize.payload.json")
    assert r.code == 0, r.stderr
    assert len(fake.calls()) == 1
    comments = gh.review_comments(REPO, NUMBER)
    assert len(comments) == first + 1
    bodies = [c["body"] for c in comments]
    assert len(set(bodies)) == len(bodies)
    assert r.outputs["hunks-reviewed"] == "1"
    assert "2 hunks unchanged since" in r.summary
    # and the same event again: nothing new at all
    r = action("pull_request", "synchronize.payload.json")
    assert r.code == 0
    assert gh.writes() == []
    assert fake.calls() == []


def test_gateway_failure_exits_3_with_the_handoff(
    action: Action, gh: FakeGitHub, fake: FakeUpstream, tmp_path: Path
) -> None:
    fake.default = error(401, "Invalid API key", type_="auth_error")
    r = action()
    assert r.code == 3
    handoff = tmp_path / "depthgate-handoff.json"
    assert r.outputs["handoff-path"] == str(handoff)
    note = json.loads(handoff.read_text())
    assert note["gateway"]["error_class"] == "auth"
    assert note["pr"] == f"{REPO}#{NUMBER}"
    assert "## depthgate: review failed" in r.summary
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("::error")]
    assert len(errors) == 1
    assert gh.writes() == []
    assert all(q.status != 422 for q in gh.requests)


def test_drafts_and_closed_prs_are_skipped_with_a_notice(action: Action, gh: FakeGitHub) -> None:
    r = action("pull_request", opened_payload(draft=True))
    assert r.code == 0
    assert "::notice title=depthgate::skipped: PR #2 is a draft" in r.stdout
    assert r.outputs["hunks-reviewed"] == "0"
    r = action("pull_request", "closed.payload.json")
    assert r.code == 0
    assert "is not reviewed" in r.stdout
    assert gh.requests == []


def test_a_fork_pr_without_secrets_exits_neutrally(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    payload = opened_payload()
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    r = action("pull_request", payload, DEPTHGATE_GATEWAY_KEY=None, GITHUB_TOKEN="ghs_test_read")
    assert r.code == 0
    assert re.search(
        r"::notice title=depthgate::PR #2 from fork mallory/Hello-World: .*App", r.stdout
    )
    assert "no secrets on fork pull requests" in r.summary
    assert r.outputs["comments-posted"] == "0"
    assert gh.requests == []
    assert fake.calls() == []


def test_a_read_only_token_on_a_fork_pr_is_a_notice_not_a_failure(
    action: Action, gh: FakeGitHub
) -> None:
    payload = opened_payload()
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    r = action("pull_request", payload, GITHUB_TOKEN="ghs_test_read")
    assert r.code == 0
    assert "::notice title=depthgate::The token is read-only on this fork pull request" in r.stdout
    assert "Inline comments not posted (3)" in r.summary  # the findings are not lost
    assert gh.reviews(REPO, NUMBER) == []


def test_workflow_dispatch_runs_the_smoke_test(
    action: Action, fake: FakeUpstream, tmp_path: Path
) -> None:
    fake.script("fast-model", answer())
    fake.script("deep-model", answer())
    fake.default = error(400, "Invalid model name passed in model=x", type_="invalid_request_error")
    r = action("workflow_dispatch", {"inputs": {}, "ref": "refs/heads/main"})
    assert r.code == 0, r.stdout + r.stderr
    record_path = tmp_path / "depthgate-smoke.json"
    assert r.outputs["smoke-report-path"] == str(record_path)
    record = json.loads(record_path.read_text())
    assert set(record) == set(RECORD_FIELDS)
    assert record["overall_pass"] is True
    assert "## depthgate smoke test passed" in r.summary
    # mode: smoke runs `depthgate smoke` directly; a broken alias fails the step
    fake.script("deep-model", error(404, "The model does not exist", code="model_not_found"))
    r = action("workflow_dispatch", {}, command="smoke")
    assert r.code == 3
    assert json.loads(record_path.read_text())["overall_pass"] is False
    assert "::error::depthgate smoke test failed" in r.stdout
    assert "## depthgate smoke test **failed**" in r.summary


def test_bad_inputs_are_clear_errors(action: Action) -> None:
    r = action(DEPTHGATE_FAIL_ON="severe")
    assert r.code == 2
    assert "fail-on 'severe': expected one of info, low, medium, high, critical" in r.stderr
    r = action(GITHUB_EVENT_PATH="/nonexistent/event.json")
    assert r.code == 2
    assert "GITHUB_EVENT_PATH=/nonexistent/event.json: no such file" in r.stderr
    r = action(DEPTHGATE_GATEWAY_KEY=None)
    assert r.code == 2
    assert "`DEPTHGATE_GATEWAY_KEY` (the action's `gateway-key` input) is empty" in r.stderr
    assert "Traceback" not in r.stderr


def one_error(r: Result) -> str:
    """The step's one ::error:: annotation; its job summary must say the same."""
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("::error")]
    assert len(errors) == 1, r.stdout
    assert r.summary.startswith("## depthgate"), r.summary
    assert "Traceback" not in r.stderr
    return errors[0]


def test_a_missing_gateway_secret_says_which_and_where(action: Action, gh: FakeGitHub) -> None:
    r = action(DEPTHGATE_GATEWAY_KEY=None)
    assert r.code == 2
    error = one_error(r)
    assert error.startswith("::error title=depthgate%3A gateway secret missing::")
    assert "`DEPTHGATE_GATEWAY_KEY` (the action's `gateway-key` input) is empty" in error
    assert "Settings → Secrets and variables → Actions" in r.summary
    assert "`gateway-key: ${{ secrets.DEPTHGATE_GATEWAY_KEY }}`" in r.summary
    assert gh.requests == []
    # Dependabot's PRs see Dependabot secrets only
    r = action(
        DEPTHGATE_GATEWAY_KEY=None, DEPTHGATE_GATEWAY_URL=None, GITHUB_ACTOR="dependabot[bot]"
    )
    assert r.code == 2
    error = one_error(r)
    assert "`DEPTHGATE_GATEWAY_URL` (the action's `gateway-url` input) and" in error
    assert "Settings → Secrets and variables → Dependabot" in r.summary


def test_an_invalid_config_is_one_annotation_and_a_job_summary(
    action: Action, tmp_path: Path
) -> None:
    (tmp_path / "routes.yaml").write_text("version: 1\nroutes: {}\ntiers: nope\n")
    r = action()
    assert r.code == 2
    error = one_error(r)
    assert error.startswith("::error title=depthgate%3A configuration error::")
    assert "routes.yaml" in error
    assert "`depthgate routes check`" in r.summary
    assert "routes.yaml" in r.stderr  # and the log says it too
    # the same in mode: smoke
    r = action("workflow_dispatch", {}, command="smoke")
    assert r.code == 2
    assert one_error(r).startswith("::error title=depthgate%3A configuration error::")


def test_a_bad_input_is_one_annotation_too(action: Action) -> None:
    r = action(DEPTHGATE_FAIL_ON="severe")
    assert r.code == 2
    assert "fail-on 'severe'" in one_error(r)
    assert "Fix the action's inputs" in r.summary


def test_warnings_become_annotations(action: Action, fake: FakeUpstream, gh: FakeGitHub) -> None:
    fake.default = Behavior(content='{"findings": [], "event": "APPROVE"}')
    r = action()
    assert r.code == 0
    warnings = [ln for ln in r.stdout.splitlines() if ln.startswith("::warning")]
    assert warnings
    assert all("ignored unknown fields in the answer: event" in w for w in warnings)
    assert gh.reviews(REPO, NUMBER) == []  # no comments: no review, only the summary
    assert len(gh.issue_comments(REPO, NUMBER)) == 1
