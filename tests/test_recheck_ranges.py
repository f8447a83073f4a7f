"""The 422 re-check keeps a range comment only when both its lines are still in one hunk: GitHub
refuses a range that spans two hunks (the fake GitHub checks it like GitHub does), so reposting
one would cost every comment of the review (issue #12: this survived ``_still_valid`` returning
True)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import serve_github
from tests.fakes.samples import AUTH, patch_file, routes
from tests.fakes.upstream import FakeUpstream, answer

REPO, N, H1, H2 = "octo/app", 9, "1" * 40, "2" * 40
# reviewed: lines 11-13 added in one hunk
SPAN_V1 = patch_file(
    "app/span.py", "@@ -10,3 +10,6 @@\n a = 1\n+b = 2\n+c = 3\n+d = 4\n e = 5\n f = 6"
)
# pushed while the review was being posted: "b = 2" (11) and "d = 4" (13) unchanged in text and
# number, but line 12 is no longer part of the diff, so they sit in two hunks
SPAN_V2 = patch_file(
    "app/span.py", "@@ -10,1 +10,2 @@\n a = 1\n+b = 2\n@@ -12,2 +13,3 @@\n+d = 4\n e = 5\n f = 6"
)


def finding(path: str, line: int, start: int | None, title: str) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "start_line": start,
        "side": "RIGHT",
        "severity": "medium",
        "category": "bug",
        "title": title,
        "body": f"{title}: explained.",
    }


def test_a_range_split_across_two_hunks_is_not_posted_again(
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.default = answer(
        finding("app/span.py", 13, 11, "Range over three lines"),
        finding("app/auth.py", 2, None, "Shell command"),
    )
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(routes())
    with serve_github() as gh:
        gh.add_pull(REPO, N, head_sha=H1, files=[AUTH, SPAN_V1])
        gh.fail_next(
            "POST",
            r"/reviews$",
            422,
            body={"message": "Unprocessable Entity", "errors": ["force-pushed"], "status": "422"},
        )
        gh.move_head_on("POST", r"/reviews$", REPO, N, H2, [AUTH, SPAN_V2])
        monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
        monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", "sk-test-recheck")
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_write")
        monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
        args = ["review", "--pr", f"{REPO}#{N}", "--config", str(cfg), "--format", "json"]
        code = main(args)
        doc = json.loads(capsys.readouterr().out)
        assert code == 0

        posts = [r for r in gh.requests if r.method == "POST" and r.path.endswith("/reviews")]
        first, second = posts  # one refusal, one repost: never a second refusal
        assert first.status == 422
        assert [(c["path"], c.get("start_line")) for c in first.body["comments"]] == [
            ("app/auth.py", None),
            ("app/span.py", 11),
        ]
        assert second.status == 200
        assert second.body["commit_id"] == H2
        assert [c["path"] for c in second.body["comments"]] == ["app/auth.py"]
        assert doc["pull_request"]["demoted"] == 1
        (summary,) = gh.issue_comments(REPO, N)
        assert "Range over three lines" in summary["body"]
        assert "rejected_by_github" in summary["body"]
        assert not gh.errors
