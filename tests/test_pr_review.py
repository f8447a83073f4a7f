"""`depthgate review --pr` against the fake GitHub (real HTTP, driven through PyGithub) and the
fake upstream: the posting rules of design §6 and the issue's done-when list, asserted on what
GitHub received."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import AUTH, DOCS, FILES, UTIL_V2, patch_file, routes
from tests.fakes.upstream import Behavior, FakeUpstream, error

REPO = "octo/app"
N = 7
H1, H2, H3 = "1" * 40, "2" * 40, "3" * 40
KEY = "sk-canary-gateway-key-0123456789abcdef"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with serve_github() as fake:
        fake.add_pull(REPO, N, head_sha=H1, files=FILES, title="Add run()", body="Adds run().")
        yield fake
        assert not fake.errors


@pytest.fixture
def up(fake: FakeUpstream) -> FakeUpstream:
    fake.default = Behavior(echo_finding=True)
    return fake


class Runner:
    def __init__(
        self,
        gh: FakeGitHub,
        up: FakeUpstream,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.gh, self.up, self.tmp, self.capsys = gh, up, tmp_path, capsys
        self.handoff = tmp_path / "handoff.json"
        monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", up.url)
        monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", KEY)
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_write")
        monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
        monkeypatch.setenv("DEPTHGATE_BOT_LOGIN", "github-actions[bot]")
        self.number = N

    def __call__(self, *extra: str, max_comments: int = 30) -> tuple[int, dict[str, Any]]:
        cfg = self.tmp / "routes.yaml"
        cfg.write_text(routes(max_comments))
        self.gh.requests.clear()
        self.up.requests.clear()
        args = ["review", "--pr", f"{REPO}#{self.number}", "--config", str(cfg), "--format", "json"]
        code = main([*args, "--handoff", str(self.handoff), *extra])
        out, _ = self.capsys.readouterr()
        return code, json.loads(out)


@pytest.fixture
def review(
    gh: FakeGitHub,
    up: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Runner:
    return Runner(gh, up, tmp_path, monkeypatch, capsys)


def review_posts(gh: FakeGitHub) -> list[Any]:
    return [r for r in gh.requests if r.method == "POST" and r.path.endswith("/reviews")]


def all_fingerprints(gh: FakeGitHub) -> list[str]:
    return [
        m.group(1)
        for c in gh.review_comments(REPO, N)
        for m in re.finditer(r"depthgate:fp=([0-9a-f]+)", c["body"])
    ]


def test_opened_pr_gets_one_review_and_one_summary(review: Runner, gh: FakeGitHub) -> None:
    code, doc = review()
    assert code == 0
    assert all(r.status < 400 for r in gh.requests), [(r.path, r.status) for r in gh.requests]
    (posted,) = review_posts(gh)
    assert posted.body["event"] == "COMMENT"
    assert posted.body["commit_id"] == H1
    (stored,) = gh.reviews(REPO, N)
    assert stored["state"] == "COMMENTED"
    comments = gh.review_comments(REPO, N)
    assert len(comments) == doc["pull_request"]["comments_posted"] == len(doc["comments"]) > 0
    assert {c["path"] for c in comments} <= {"app/auth.py", "app/util.py", "README.md"}
    (summary,) = gh.issue_comments(REPO, N)
    assert "| alias | hunks |" in summary["body"]
    assert f'"head":"{H1}"' in summary["body"]
    # reads: the PR, its files, issue comments, review comments, the head check
    assert len(gh.reads()) <= 6
    assert len(gh.writes()) == 2


def test_synchronize_reviews_only_the_changed_hunk(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    assert review()[0] == 0
    first_calls = len(up.calls())
    gh.push(REPO, N, H2, [AUTH, UTIL_V2, DOCS])
    code, doc = review()
    assert code == 0
    assert first_calls > 1
    (call,) = up.calls()  # only app/util.py's hunk went to the gateway
    assert "app/util.py" in call.body["messages"][-1]["content"].split("Context only")[0]
    second = gh.reviews(REPO, N)[-1]
    assert second["commit_id"] == H2
    new = [c for c in gh.review_comments(REPO, N) if c["pull_request_review_id"] == second["id"]]
    assert {c["path"] for c in new} == {"app/util.py"}
    fps = all_fingerprints(gh)
    assert len(fps) == len(set(fps))  # zero duplicate comments
    (summary,) = gh.issue_comments(REPO, N)  # edited in place, not a second one
    assert "2 hunks unchanged since 111111111111 were not reviewed again" in summary["body"]
    assert [r.method for r in gh.writes()] == ["POST", "PATCH"]
    assert doc["pull_request"]["reused_hunks"] == 2


def test_the_same_run_twice_posts_nothing_new(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    assert review()[0] == 0
    code, doc = review()
    assert code == 0
    assert gh.writes() == []
    assert up.calls() == []
    assert "nothing new to review" in doc["pull_request"]["skipped"]
    assert len(gh.reviews(REPO, N)) == 1
    assert len(gh.issue_comments(REPO, N)) == 1


def test_a_rerun_after_a_lost_summary_posts_no_duplicate(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    """A run that died after posting its review (the summary never written): the next run
    reviews again but posts nothing twice, because the comments carry their fingerprints."""
    gh.fail_next("POST", r"/issues/\d+/comments$", 500)
    code, doc = review()
    assert code == 4
    assert doc["handoff"]["github"]["step"] == "post the summary comment"
    assert len(gh.reviews(REPO, N)) == 1
    code, doc = review()
    assert code == 0
    assert len(gh.reviews(REPO, N)) == 1  # nothing new: no second review
    assert doc["pull_request"]["duplicates"] == len(gh.review_comments(REPO, N))
    assert len(gh.issue_comments(REPO, N)) == 1


def test_gateway_failure_posts_nothing_and_hands_off(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    up.default = error(401, "Invalid API key", type_="auth_error")
    code, _doc = review()
    assert code == 3
    assert gh.writes() == []
    note = json.loads(review.handoff.read_text())
    assert note["gateway"]["error_class"] == "auth"
    assert note["pr"] == f"{REPO}#{N}"
    assert note["head_sha"] == H1
    assert note["hunks"]["reviewed"] == 0
    assert all(r.status < 400 for r in gh.requests)


def test_a_partial_review_posts_what_completed_and_fails(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    up.script("deep-model", error(500, "upstream down"))
    code, _doc = review()
    assert code == 3
    (stored,) = gh.reviews(REPO, N)
    assert "Partial review" in stored["body"]
    assert {c["path"] for c in gh.review_comments(REPO, N)} == {"README.md", "app/util.py"}
    (summary,) = gh.issue_comments(REPO, N)
    assert "**Partial review: 2/3 hunks reviewed.**" in summary["body"]
    note = json.loads(review.handoff.read_text())
    assert note["status"] == "failed_partial"
    assert note["posted"]["review_id"] == stored["id"]
    assert {f["path"] for f in note["hunks"]["failed"]} == {"app/auth.py"}
    # the failed hunks are not recorded as reviewed: the next run sends them again
    up.scripts.clear()
    review()
    assert len(up.calls()) == 1  # the one deep task; the reviewed hunks are not sent again


def test_400_findings_stay_within_github_limits(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    files = [
        patch_file(
            f"docs/page{i}.md",
            "@@ -0,0 +1,50 @@\n" + "\n".join(f"+line {j} of page {i}" for j in range(50)),
            status="added",
        )
        for i in range(8)
    ]
    gh.add_pull(REPO, N, head_sha=H3, files=files)
    up.default = Behavior(echo_finding=True, echo_count=50)
    code, doc = review(max_comments=30)
    assert code == 0
    writes = gh.writes()
    assert len(writes) == 2
    assert all(sum(1 for w in writes if 0 <= w.ts - t < 60) <= 80 for t in (w.ts for w in writes))
    assert len(doc["comments"]) + len(doc["summary_only"]) == 400
    (summary,) = gh.issue_comments(REPO, N)
    assert "30 inline comments · 370 findings below" in summary["body"]
    assert summary["body"].count("over_max_comments") == 370
    assert len(gh.review_comments(REPO, N)) == 30


def test_a_head_that_moves_during_the_review_gets_no_422(review: Runner, gh: FakeGitHub) -> None:
    # the push lands right after depthgate read the comments, before it posts
    gh.move_head_on("GET", r"/pulls/\d+/comments$", REPO, N, H2, [AUTH, UTIL_V2, DOCS])
    code, _doc = review()
    assert code == 0
    assert all(r.status < 400 for r in gh.requests)
    (stored,) = gh.reviews(REPO, N)
    assert stored["commit_id"] == H1  # the commit that was reviewed
    (summary,) = gh.issue_comments(REPO, N)
    assert "The PR moved to 222222222222 during the review" in summary["body"]


def test_a_422_moves_what_no_longer_holds_to_the_summary(review: Runner, gh: FakeGitHub) -> None:
    """GitHub refuses the review (a force-push it saw first): the comments are checked against
    the PR as it is now, the valid ones are posted once more there, the others are listed."""
    gh.fail_next(
        "POST",
        r"/reviews$",
        422,
        body={
            "message": "Unprocessable Entity",
            "errors": ["Pull request review thread line must be part of the diff"],
            "status": "422",
        },
    )
    gh.move_head_on("POST", r"/reviews$", REPO, N, H2, [AUTH, UTIL_V2, DOCS])
    code, doc = review()
    assert code == 0
    first, second = review_posts(gh)
    assert (first.status, second.status) == (422, 200)
    assert second.body["commit_id"] == H2
    assert {c["path"] for c in second.body["comments"]} == {"app/auth.py", "README.md"}
    assert doc["pull_request"]["demoted"] == 1
    (summary,) = gh.issue_comments(REPO, N)
    assert "GitHub refused the review" in summary["body"]
    assert "rejected_by_github" in summary["body"]


def test_secondary_rate_limits_are_waited_out(review: Runner, gh: FakeGitHub) -> None:
    gh.secondary_rate_limit("POST", r"/reviews$", retry_after=30)
    gh.secondary_rate_limit("GET", r"/files$", retry_after=None, status=429)
    code, _ = review()
    assert code == 0
    assert len(review_posts(gh)) == 2
    assert len(gh.reviews(REPO, N)) == 1


def test_a_primary_rate_limit_waits_for_its_reset(review: Runner, gh: FakeGitHub) -> None:
    gh.primary_rate_limit("POST", r"/issues/\d+/comments$", reset_in=30)
    code, _ = review()
    assert code == 0
    summary_posts = [r for r in gh.writes() if r.path.endswith("/comments")]
    assert [r.status for r in summary_posts] == [403, 201]
    assert len(gh.issue_comments(REPO, N)) == 1


def test_a_rate_limit_longer_than_the_cap_hands_off(review: Runner, gh: FakeGitHub) -> None:
    gh.secondary_rate_limit("POST", r"/reviews$", retry_after=3600)
    code, _doc = review()
    assert code == 4
    note = json.loads(review.handoff.read_text())
    assert note["github"]["error_class"] == "rate_limited"
    assert note["github"]["step"] == "post the review"
    assert gh.reviews(REPO, N) == []
    assert gh.issue_comments(REPO, N) == []  # nothing half-posted


def test_a_bad_token_fails_with_exit_4(
    review: Runner, gh: FakeGitHub, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_nobody_knows_this_token")
    code, _doc = review()
    assert code == 4
    assert up.calls() == []
    note = json.loads(review.handoff.read_text())
    assert note["github"]["error_class"] == "auth"
    assert note["github"]["http_status"] == 401
    assert "github-token" in note["next_action"]
    assert "ghs_nobody" not in review.handoff.read_text()


def test_a_read_only_token_says_so(
    review: Runner, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_read")
    code, _doc = review()
    assert code == 4
    note = json.loads(review.handoff.read_text())
    assert note["github"]["error_class"] == "forbidden"
    assert "pull-requests: write" in note["next_action"]
    assert note["posted"]["review_id"] is None


def test_comments_by_others_cannot_pose_as_depthgate(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    assert review()[0] == 0
    posted = gh.review_comments(REPO, N)
    summary = gh.issue_comments(REPO, N)[0]["body"]
    # another PR with the same changes, where the author pasted depthgate's markers
    review.number = 8
    gh.add_pull(REPO, 8, head_sha=H3, files=FILES)
    gh.seed_issue_comment(REPO, 8, summary, user_login="mallory")
    gh.seed_review(
        REPO,
        8,
        user_login="mallory",
        comments=[{"path": c["path"], "line": c["line"], "body": c["body"]} for c in posted],
    )
    code, doc = review()
    assert code == 0
    assert len(up.calls()) > 0
    assert doc["pull_request"]["duplicates"] == 0
    assert len(gh.issue_comments(REPO, 8)) == 2  # its own summary, beside mallory's
    assert len(gh.review_comments(REPO, 8)) == 2 * len(posted)


def test_a_closed_pr_is_left_alone(review: Runner, gh: FakeGitHub, up: FakeUpstream) -> None:
    gh.add_pull(REPO, N, head_sha=H1, files=FILES, state="closed")
    code, doc = review()
    assert code == 0
    assert doc["pull_request"]["skipped"] == f"PR #{N} is closed"
    assert gh.writes() == []
    assert up.calls() == []


def test_a_file_without_patch_is_skipped_as_too_large(review: Runner, gh: FakeGitHub) -> None:
    big = {"filename": "data/huge.sql", "status": "modified", "changes": 90000}
    gh.add_pull(REPO, N, head_sha=H1, files=[*FILES, big])
    code, _doc = review()
    assert code == 0
    (summary,) = gh.issue_comments(REPO, N)
    assert "**Skipped files:** `data/huge.sql` (too_large)" in summary["body"]


def test_350_files_are_read_across_pages(review: Runner, gh: FakeGitHub) -> None:
    files = [patch_file(f"vendor/lib{i}/x.js", "@@ -1 +1 @@\n-a\n+b") for i in range(347)] + FILES
    gh.add_pull(REPO, N, head_sha=H1, files=files)
    code, doc = review()
    assert code == 0
    pages = [r for r in gh.reads() if r.path.endswith("/files")]
    assert len(pages) == 4
    assert len(doc["hunks"]) == 350


def test_dry_run_reads_but_posts_nothing(review: Runner, gh: FakeGitHub) -> None:
    code, doc = review("--dry-run")
    assert code == 0
    assert gh.writes() == []
    request = doc["pull_request"]["review_request"]
    assert request["event"] == "COMMENT"
    assert request["commit_id"] == H1
    assert len(request["comments"]) == len(doc["comments"])


def test_bad_pr_references_are_usage_errors(
    review: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    for ref in ("octo/app", "octo#1", "octo/app#x", "octo/app#0", "a/b/c#1"):
        assert main(["review", "--pr", ref]) == 2
        assert "expected OWNER/REPO#NUMBER" in capsys.readouterr().err


def test_earlier_findings_outside_the_changed_hunks_stay_in_the_summary(
    review: Runner, gh: FakeGitHub, up: FakeUpstream
) -> None:
    assert review(max_comments=1)[0] == 0  # 1 inline, the other 2 findings in the summary
    first = gh.issue_comments(REPO, N)[0]["body"]
    assert first.count("over_max_comments") == 2
    gh.push(REPO, N, H2, [AUTH, UTIL_V2, DOCS])  # only app/util.py changes
    assert review(max_comments=1)[0] == 0
    (summary,) = gh.issue_comments(REPO, N)
    body = summary["body"]
    assert "Earlier findings not placed inline, in files not reviewed again in full" in body
    earlier = body.split("Earlier findings not placed inline")[1]
    carried = [ln for ln in earlier.splitlines() if ln.startswith("- **")]
    assert carried
    assert all(ln.endswith("(as of 111111111111)") for ln in carried)
    assert not any("`app/util.py`" in ln for ln in carried)  # that file was reviewed again
