"""The 422 re-check, against the PR as it is now: a comment is posted again only when its lines
are still on the diff, with the same text, on the same side -- and a range only when both its
lines are still in one hunk. GitHub refuses a range that spans two hunks (the fake GitHub checks
it as GitHub does), so reposting one would cost every comment of the review (issue #12: this
survived ``_still_valid`` returning True). What is dropped is listed in the summary as it was."""

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
# reviewed: old line 11 deleted, new lines 11-13 added, in one hunk
SPAN_V1 = patch_file(
    "app/span.py", "@@ -10,4 +10,6 @@\n a = 1\n-old = 0\n+b = 2\n+c = 3\n+d = 4\n e = 5\n f = 6"
)
GONE_V1 = patch_file("app/gone.py", "@@ -5,2 +5,1 @@\n keep = 1\n-dropped = 2")
# pushed while the review was being posted: "old = 0" (old 11), "b = 2" (11) and "d = 4" (13)
# unchanged in text and number, but line 12 is no longer part of the diff, so 11 and 13 sit in
# two hunks; app/gone.py is no longer changed
SPAN_V2 = patch_file(
    "app/span.py",
    "@@ -10,2 +10,2 @@\n a = 1\n-old = 0\n+b = 2\n@@ -13,2 +13,3 @@\n+d = 4\n e = 5\n f = 6",
)
LONG = "The range needs a closer look. " * 255  # ~7,900 characters: the comment is longer


def finding(
    path: str, line: int, title: str, *, start: int | None = None, side: str = "RIGHT"
) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "start_line": start,
        "side": side,
        "severity": "medium",
        "category": "bug",
        "title": title,
        "body": LONG if start else f"{title}: explained.",
    }


def test_the_recheck_keeps_only_what_still_holds_line_by_line(
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.default = answer(
        finding("app/span.py", 13, "Range over three lines", start=11),  # split in two hunks
        finding("app/span.py", 12, "Line that left the diff"),
        finding("app/span.py", 11, "Removed assignment", side="LEFT"),  # still there
        finding("app/gone.py", 6, "Dropped constant", side="LEFT"),  # file no longer changed
        finding("app/auth.py", 2, "Shell command"),  # still there
    )
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(routes())
    with serve_github() as gh:
        gh.add_pull(REPO, N, head_sha=H1, files=[AUTH, SPAN_V1, GONE_V1])
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
        assert len(first.body["comments"]) == 5
        assert second.status == 200
        assert second.body["commit_id"] == H2
        assert {(c["path"], c["side"], c["line"]) for c in second.body["comments"]} == {
            ("app/auth.py", "RIGHT", 2),
            ("app/span.py", "LEFT", 11),
        }
        assert doc["pull_request"]["demoted"] == 3
        demoted = {
            (f["path"], f["side"], f["line"], f["title"])
            for s in doc["summary_only"]
            if s["reason"] == "rejected_by_github"
            for f in [s["finding"]]
        }
        assert demoted == {
            ("app/span.py", "RIGHT", 13, "Range over three lines"),
            ("app/span.py", "RIGHT", 12, "Line that left the diff"),
            ("app/gone.py", "LEFT", 6, "Dropped constant"),
        }
        (summary,) = gh.issue_comments(REPO, N)
        assert summary["body"].startswith("## depthgate review\n")
        assert "`app/gone.py`:6 — Dropped constant <sub>(rejected_by_github" in summary["body"]
        assert not gh.errors
