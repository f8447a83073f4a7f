"""``--fail-on`` through the public surfaces: ``review --diff --dry-run`` and ``review --pr``
(fake GitHub, fake upstream). A finding counts for the bar wherever it lands: inline, or only in
the summary because its line is not on the diff -- the same finding gives the same exit code on
every surface (issue #12; style habit 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import serve_github
from tests.fakes.samples import FILES, routes
from tests.fakes.upstream import Behavior, FakeUpstream, answer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pr.diff"


def high(path: str, line: int = 9000) -> dict[str, Any]:
    """A high finding on a line no hunk shows: it can only go to the summary."""
    return {
        "path": path,
        "line": line,
        "side": "RIGHT",
        "severity": "high",
        "category": "security",
        "title": "Token logged",
        "body": "The session token is written to the log.",
    }


@pytest.fixture
def env(fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", "sk-test-fail-on")
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(routes())
    return cfg


BARS = [("high", 1), ("critical", 0)]


@pytest.mark.parametrize(("bar", "code"), BARS)
def test_diff_dry_run_counts_summary_only_findings(
    fake: FakeUpstream, env: Path, capsys: pytest.CaptureFixture[str], bar: str, code: int
) -> None:
    fake.default = answer(high("src/shop/pricing.py"))
    args = ["review", "--dry-run", "--diff", str(EXAMPLE), "--config", str(env)]
    assert main([*args, "--format", "json", "--fail-on", bar]) == code
    doc = json.loads(capsys.readouterr().out)
    assert doc["comments"] == []
    assert doc["summary_only"]
    assert {s["reason"] for s in doc["summary_only"]} == {"line_not_in_diff"}


# every task answers with one medium finding on its first added line: all of them inline
INLINE_BARS = [("medium", 1), ("high", 0)]


@pytest.mark.parametrize(("bar", "code"), INLINE_BARS)
def test_diff_dry_run_counts_inline_findings_at_the_bar(
    fake: FakeUpstream, env: Path, capsys: pytest.CaptureFixture[str], bar: str, code: int
) -> None:
    fake.default = Behavior(echo_finding=True)
    args = ["review", "--dry-run", "--diff", str(EXAMPLE), "--config", str(env)]
    assert main([*args, "--format", "json", "--fail-on", bar]) == code
    doc = json.loads(capsys.readouterr().out)
    assert doc["comments"]
    assert doc["summary_only"] == []


@pytest.mark.parametrize(("bar", "code"), INLINE_BARS)
def test_pr_review_counts_inline_findings_at_the_bar(
    fake: FakeUpstream,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bar: str,
    code: int,
) -> None:
    fake.default = Behavior(echo_finding=True)
    with serve_github() as gh:
        gh.add_pull("octo/app", 4, head_sha="1" * 40, files=FILES)
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_write")
        monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
        args = ["review", "--pr", "octo/app#4", "--config", str(env), "--format", "json"]
        assert main([*args, "--fail-on", bar]) == code
        doc = json.loads(capsys.readouterr().out)
        assert doc["summary_only"] == []
        assert len(gh.review_comments("octo/app", 4)) == len(doc["comments"]) > 0
        assert not gh.errors


@pytest.mark.parametrize(("bar", "code"), BARS)
def test_pr_review_counts_summary_only_findings(
    fake: FakeUpstream,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bar: str,
    code: int,
) -> None:
    fake.default = answer(high("app/auth.py"))
    with serve_github() as gh:
        gh.add_pull("octo/app", 3, head_sha="1" * 40, files=FILES)
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_write")
        monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
        args = ["review", "--pr", "octo/app#3", "--config", str(env), "--format", "json"]
        assert main([*args, "--fail-on", bar]) == code
        doc = json.loads(capsys.readouterr().out)
        assert doc["comments"] == []
        assert {s["reason"] for s in doc["summary_only"]} == {"line_not_in_diff"}
        (summary,) = gh.issue_comments("octo/app", 3)
        assert "Token logged" in summary["body"]
        assert not gh.errors
