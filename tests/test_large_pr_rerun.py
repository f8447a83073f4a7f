"""A 2,000-hunk PR under the packaged defaults (``limits.max_hunks: 500``), against the fake
GitHub and the fake upstream: re-runs on the same head review what is left until every hunk
was reviewed once; from then on a re-run costs 0 gateway calls and 0 GitHub writes -- the
summary's marker keeps every reviewed hunk (issue #12)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import patch_file
from tests.fakes.upstream import Behavior, FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"
REPO, N, HEAD = "octo/big", 12, "c" * 40
FILES, HUNKS_PER_FILE = 100, 20


def big_pr() -> list[dict[str, Any]]:
    files = []
    for f in range(FILES):
        hunks = [
            f"@@ -{10 * i + 1},3 +{10 * i + 1},4 @@\n a = 1\n+value_{f}_{i} = compute({i})\n b\n c"
            for i in range(HUNKS_PER_FILE)
        ]
        files.append(patch_file(f"pkg/mod_{f:03d}.py", "\n".join(hunks)))
    return files


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with serve_github() as fake:
        fake.add_pull(REPO, N, head_sha=HEAD, files=big_pr(), title="Big", body="Many hunks.")
        yield fake
        assert not fake.errors


def test_reruns_on_an_unchanged_head_cost_nothing_at_2000_hunks(
    gh: FakeGitHub,
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the models the packaged routes lock their aliases to
    fake.script("review-fast", Behavior(echo_finding=True, model="gpt-4.1-mini-2025-04-14"))
    fake.script("review-deep", Behavior(echo_finding=True, model="claude-sonnet-4-6"))
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", "sk-test-large")
    monkeypatch.setenv("GITHUB_API_URL", gh.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_write")
    monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
    monkeypatch.setenv("DEPTHGATE_BOT_LOGIN", "github-actions[bot]")

    def rerun() -> tuple[int, int, int]:
        """(hunks reviewed, gateway calls, GitHub writes) of one run on the same head."""
        gh.requests.clear()
        fake.requests.clear()
        args = ["review", "--pr", f"{REPO}#{N}", "--config", str(DEFAULTS), "--format", "json"]
        code = main(args)
        out, _ = capsys.readouterr()
        assert code == 0, out[:3000]
        doc = json.loads(out)
        reviewed = sum(1 for h in doc.get("hunks", []) if h["state"] == "reviewed")
        return reviewed, len(fake.calls()), len(gh.writes())

    total = FILES * HUNKS_PER_FILE
    reviewed_once = 0
    for _ in range(total // 500):
        reviewed, calls, writes = rerun()
        assert reviewed == 500
        assert calls > 0
        assert writes >= 1
        reviewed_once += reviewed
    assert reviewed_once == total
    (summary,) = gh.issue_comments(REPO, N)
    assert len(summary["body"]) <= 65_536
    for _ in range(2):
        assert rerun() == (0, 0, 0)
