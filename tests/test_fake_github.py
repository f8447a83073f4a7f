"""The fake GitHub (tests/fakes/github.py), driven through PyGithub over real HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException, GithubIntegration
from github.GithubException import BadCredentialsException, RateLimitExceededException
from github.GithubRetry import GithubRetry
from github.PullRequest import ReviewComment

from tests.fakes.github import (
    BODY_REQUIRED,
    BODY_TOO_LONG,
    COMMENT_BODY_TOO_LONG,
    DOCS_REVIEW,
    HUNK_BLANK,
    LINE_NOT_IN_DIFF,
    LINE_UNRESOLVED,
    ONE_PENDING,
    OWN_APPROVE,
    PATH_UNRESOLVED,
    START_NOT_BEFORE,
    START_NOT_IN_HUNK,
    FakeGitHub,
    parse_patch,
    serve_github,
    to_sentence,
)

REPO = "acme/widgets"
HEAD = "1" * 40
NEW_HEAD = "2" * 40

# Two hunks. Old numbers: 1 ctx, 2 del, 3 ctx, 4 ctx | 20 ctx, 21 del, 22 ctx.
# New numbers: 1 ctx, 2-3 add, 4 ctx, 5 ctx | 21 ctx, 22-23 add, 24 ctx.
PATCH = (
    "@@ -1,4 +1,5 @@\n"
    " import os\n"
    "-import sys\n"
    "+import re\n"
    "+import json\n"
    " \n"
    " def f():\n"
    "@@ -20,3 +21,4 @@ def g():\n"
    "     x = 1\n"
    "-    return x\n"
    "+    y = x + 1\n"
    "+    return y\n"
    "     # end"
)
NEW_PATCH = "@@ -1,2 +1,3 @@\n a\n+b\n c"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with serve_github() as fake:
        fake.add_repo(REPO)
        fake.add_pull(
            REPO,
            7,
            head_sha=HEAD,
            files=[
                {"filename": "app.py", "status": "modified", "patch": PATCH},
                {"filename": "logo.png", "status": "added", "additions": 0, "deletions": 0},
            ],
            title="Add things",
        )
        yield fake
        assert fake.errors == []  # no bug of the fake itself was hit


WRITE_TOKEN = "ghs_test_write"  # noqa: S105 (the fake's own test token)


@contextmanager
def client(fake: FakeGitHub, token: str = WRITE_TOKEN, **kw: Any) -> Iterator[Github]:
    settings: dict[str, Any] = {
        "retry": None,
        "seconds_between_requests": None,
        "seconds_between_writes": None,
        **kw,
    }
    with Github(auth=Auth.Token(token), base_url=fake.url, **settings) as g:
        yield g


def review_422(fake: FakeGitHub, **post: Any) -> dict[str, Any]:
    """POST a review through PyGithub, expect a 422, return its body; nothing was stored."""
    with client(fake) as g:
        pr = g.get_repo(REPO).get_pull(7)
        commit = g.get_repo(REPO).get_commit(post.pop("sha", HEAD))
        with pytest.raises(GithubException) as info:
            pr.create_review(commit=commit, **post)
    assert info.value.status == 422
    assert fake.reviews(REPO, 7) == []
    assert fake.review_comments(REPO, 7) == []
    data: dict[str, Any] = info.value.data
    return data


# --- the hunk parser ---------------------------------------------------------------------------


def test_parse_patch_numbers_sides_and_positions() -> None:
    p = parse_patch(PATCH)
    assert sorted(p.right) == [1, 2, 3, 4, 5, 21, 22, 23, 24]
    assert sorted(p.left) == [1, 2, 3, 4, 20, 21, 22]
    assert (p.additions, p.deletions) == (4, 2)
    assert p.right[2].kind == "+"
    assert p.right[2].index == 3
    assert p.left[2].kind == "-"
    assert p.left[2].index == 2
    assert p.right[21].hunk == 1
    assert p.right[21].index == 8
    assert p.diff_hunk(p.right[22]) == (
        "@@ -20,3 +21,4 @@ def g():\n     x = 1\n-    return x\n+    y = x + 1"
    )
    marker = parse_patch("@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n")
    assert marker.rows[2].kind == "\\"
    assert marker.right[1].index == 3
    with pytest.raises(ValueError, match="hunk header"):
        parse_patch("not a diff")


def test_to_sentence_joins_like_github() -> None:
    assert to_sentence(["A"]) == "A"
    assert to_sentence(["A", "B"]) == "A and B"
    assert to_sentence(["A", "B", "C"]) == "A, B, and C"


# --- reading -----------------------------------------------------------------------------------


def test_reads_the_pull_request(gh: FakeGitHub) -> None:
    gh.add_pull(REPO, 8, head_sha=NEW_HEAD, files=[], head_repo="forker/widgets", draft=True)
    with client(gh) as g:
        repo = g.get_repo(REPO)
        assert (repo.full_name, repo.default_branch, repo.private) == (REPO, "main", False)
        pr = repo.get_pull(7)
        assert (pr.number, pr.state, pr.title, pr.draft) == (7, "open", "Add things", False)
        assert pr.head.sha == HEAD
        assert pr.head.repo.full_name == REPO
        assert not pr.head.repo.fork
        assert pr.base.ref == "main"
        assert pr.user.login == "octocat"
        assert pr.changed_files == 2
        assert pr.additions == 4
        assert pr.deletions == 2
        fork = repo.get_pull(8)
        assert fork.draft
        assert fork.head.repo.full_name == "forker/widgets"
        assert fork.head.repo.fork
        files = list(pr.get_files())
        assert [f.filename for f in files] == ["app.py", "logo.png"]
        assert (files[0].additions, files[0].deletions, files[0].changes) == (4, 2, 6)
        assert files[0].patch == PATCH
        assert "patch" not in files[1].raw_data
        with pytest.raises(GithubException) as info:
            repo.get_pull(99)
        assert info.value.status == 404
        assert info.value.data == {
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404",
        }


def test_350_files_across_pages_with_githubs_link_header(gh: FakeGitHub) -> None:
    files = [{"filename": f"src/f{i:03}.py", "patch": "@@ -1 +1 @@\n-a\n+b"} for i in range(350)]
    gh.add_pull(REPO, 9, head_sha=NEW_HEAD, files=files)
    with client(gh, per_page=100) as g:
        got = list(g.get_repo(REPO).get_pull(9).get_files())
    assert [f.filename for f in got] == [f["filename"] for f in files]
    pages = [r for r in gh.requests if r.path.endswith("/pulls/9/files")]
    assert [r.query.get("page") for r in pages] == [None, "2", "3", "4"]
    repo_id = g_repo_id(gh)
    assert pages[1].path == f"/repositories/{repo_id}/pulls/9/files"  # followed the Link URL
    with client(gh) as g:  # default 30 a page
        assert len(list(g.get_repo(REPO).get_pull(9).get_files())) == 350
    with httpx.Client(base_url=gh.url, headers={"Authorization": "token ghs_test_read"}) as h:
        first = h.get(f"/repos/{REPO}/pulls/9/files", params={"per_page": 100})
        middle = h.get(f"/repos/{REPO}/pulls/9/files", params={"per_page": 100, "page": 2})
        last = h.get(f"/repos/{REPO}/pulls/9/files", params={"per_page": 100, "page": 4})
        beyond = h.get(f"/repos/{REPO}/pulls/9/files", params={"per_page": 100, "page": 5})
        clamped = h.get(f"/repos/{REPO}/pulls/9/files", params={"per_page": 500})
    base = f"{gh.url}/repositories/{repo_id}/pulls/9/files?per_page=100"
    assert first.headers["link"] == (f'<{base}&page=2>; rel="next", <{base}&page=4>; rel="last"')
    assert middle.headers["link"] == (
        f'<{base}&page=1>; rel="prev", <{base}&page=3>; rel="next", '
        f'<{base}&page=4>; rel="last", <{base}&page=1>; rel="first"'
    )
    assert last.headers["link"] == f'<{base}&page=3>; rel="prev", <{base}&page=1>; rel="first"'
    assert len(last.json()) == 50
    assert beyond.json() == []
    assert len(clamped.json()) == 100


def g_repo_id(fake: FakeGitHub) -> int:
    repo_id: int = fake.add_repo(REPO)["id"]
    return repo_id


def test_files_stop_at_3000(gh: FakeGitHub) -> None:
    files = [{"filename": f"f{i}", "additions": 1, "deletions": 0} for i in range(3100)]
    gh.add_pull(REPO, 10, head_sha=NEW_HEAD, files=files)
    with client(gh, per_page=100) as g:
        pr = g.get_repo(REPO).get_pull(10)
        assert pr.changed_files == 3100
        assert len(list(pr.get_files())) == 3000


def test_diff_media_type_and_too_large(gh: FakeGitHub) -> None:
    gh.add_pull(REPO, 11, head_sha=NEW_HEAD, files=[{"filename": f"f{i}"} for i in range(301)])
    headers = {"Authorization": "token ghs_test_read", "Accept": "application/vnd.github.diff"}
    with httpx.Client(base_url=gh.url, headers=headers) as h:
        small = h.get(f"/repos/{REPO}/pulls/7")
        big = h.get(f"/repos/{REPO}/pulls/11")
    assert small.status_code == 200
    assert small.text.startswith("diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@")
    assert "Binary files /dev/null and b/logo.png differ" not in small.text
    assert "Binary files a/logo.png and b/logo.png differ" in small.text
    assert big.status_code == 406
    assert big.json()["errors"] == [
        {"resource": "PullRequest", "field": "diff", "code": "too_large"}
    ]


# --- reviews -----------------------------------------------------------------------------------


def test_valid_review_with_single_line_and_range_comments_on_both_sides(gh: FakeGitHub) -> None:
    comments: list[ReviewComment] = [
        {"path": "app.py", "line": 2, "side": "RIGHT", "body": "added"},
        {"path": "app.py", "line": 5, "body": "context, RIGHT by default"},
        {"path": "app.py", "line": 2, "side": "LEFT", "body": "deleted"},
        {"path": "app.py", "line": 4, "side": "LEFT", "body": "context by its old number"},
        {"path": "app.py", "start_line": 2, "line": 5, "side": "RIGHT", "body": "range"},
        {"path": "app.py", "start_line": 1, "line": 2, "side": "LEFT", "body": "left range"},
        {
            "path": "app.py",
            "start_line": 20,
            "start_side": "LEFT",
            "line": 23,
            "side": "RIGHT",
            "body": "across sides",
        },
        {"path": "app.py", "position": 3, "body": "deprecated position: new line 2"},
    ]
    with client(gh) as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        review = pr.create_review(
            commit=repo.get_commit(HEAD), body="Summary", event="COMMENT", comments=comments
        )
        assert review.state == "COMMENTED"
        assert review.commit_id == HEAD
        assert review.user.login == "github-actions[bot]"
        assert review.body == "Summary"
        listed = list(pr.get_review_comments())
        assert [c.pull_request_review_id for c in listed] == [review.id] * len(comments)
        assert [(c.line, c.side, c.start_line) for c in listed] == [
            (2, "RIGHT", None),
            (5, "RIGHT", None),
            (2, "LEFT", None),
            (4, "LEFT", None),
            (5, "RIGHT", 2),
            (2, "LEFT", 1),
            (23, "RIGHT", 20),
            (2, "RIGHT", None),
        ]
        assert [r.id for r in pr.get_reviews()] == [review.id]
    stored = gh.review_comments(REPO, 7)
    assert stored[6]["start_side"] == "LEFT"
    assert stored[6]["original_line"] == 23
    assert stored[0]["diff_hunk"] == "@@ -1,4 +1,5 @@\n import os\n-import sys\n+import re"
    assert stored[0]["commit_id"] == HEAD
    assert stored[0]["position"] == 3
    assert gh.reviews(REPO, 7)[0]["state"] == "COMMENTED"
    post = gh.writes()[0]
    assert post.path == f"/repos/{REPO}/pulls/7/reviews"
    assert post.status == 200
    assert post.body["event"] == "COMMENT"
    assert post.body["commit_id"] == HEAD


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        pytest.param(
            {"path": "app.py", "line": 10},
            to_sentence([LINE_NOT_IN_DIFF, HUNK_BLANK]),
            id="off-diff line",
        ),
        pytest.param(
            {"path": "app.py", "line": 23, "side": "LEFT"},
            to_sentence([LINE_NOT_IN_DIFF, HUNK_BLANK]),
            id="LEFT on an added line",
        ),
        pytest.param(
            {"path": "app.py", "start_line": 2, "line": 22},
            START_NOT_IN_HUNK,
            id="start_line in another hunk",
        ),
        pytest.param(
            {"path": "app.py", "start_line": 5, "line": 5}, START_NOT_BEFORE, id="start == line"
        ),
        pytest.param(
            {"path": "app.py", "start_line": 5, "line": 2}, START_NOT_BEFORE, id="start > line"
        ),
        pytest.param(
            {"path": "app.py", "start_line": 9, "line": 22},
            START_NOT_IN_HUNK,
            id="start_line off the diff",
        ),
        pytest.param(
            {"path": "app.py", "start_line": 2, "line": 9},
            to_sentence([LINE_NOT_IN_DIFF, START_NOT_IN_HUNK, HUNK_BLANK]),
            id="range ending off the diff",
        ),
        pytest.param({"path": "nope.py", "line": 2}, PATH_UNRESOLVED, id="unknown path"),
        pytest.param(
            {"path": "logo.png", "line": 1},
            to_sentence([LINE_NOT_IN_DIFF, HUNK_BLANK]),
            id="file without a patch",
        ),
        pytest.param({"path": "app.py", "position": 40}, LINE_UNRESOLVED, id="position off"),
        pytest.param({"path": "app.py"}, LINE_UNRESOLVED, id="no line"),
        pytest.param(
            {"path": "app.py", "line": 2, "body": "x" * 65_537},
            COMMENT_BODY_TOO_LONG,
            id="comment body too long",
        ),
    ],
)
def test_review_422_rejects_the_whole_review(
    gh: FakeGitHub, comment: dict[str, Any], error: str
) -> None:
    good = {"path": "app.py", "line": 2, "body": "fine on its own"}
    bad = {"body": "finding", **comment}
    comments = cast("list[ReviewComment]", [good, bad])
    data = review_422(gh, body="Summary", event="COMMENT", comments=comments)
    assert data == {
        "message": "Unprocessable Entity",
        "errors": [error],
        "documentation_url": DOCS_REVIEW,
        "status": "422",
    }


def test_review_422_on_the_review_itself(gh: FakeGitHub) -> None:
    ok: list[ReviewComment] = [{"path": "app.py", "line": 2, "body": "x"}]
    unknown = "9" * 40
    with client(gh) as g:
        pr = g.get_repo(REPO).get_pull(7)
        with pytest.raises(GithubException) as info:  # PyGithub needs a Commit: make a lazy one
            pr._requester.requestJsonAndCheck(
                "POST",
                f"{pr.url}/reviews",
                input={"commit_id": unknown, "body": "b", "event": "COMMENT", "comments": ok},
            )
    assert info.value.status == 422
    assert info.value.data["errors"] == [f"No commit found for SHA: {unknown}"]
    assert review_422(gh, body="x" * 65_537, event="COMMENT")["errors"] == [BODY_TOO_LONG]
    assert review_422(gh, body="", event="COMMENT", comments=ok)["errors"] == [BODY_REQUIRED]
    assert review_422(gh, event="REQUEST_CHANGES")["errors"] == [BODY_REQUIRED]
    assert gh.reviews(REPO, 7) == []


def test_review_body_at_the_cap_is_accepted(gh: FakeGitHub) -> None:
    with client(gh) as g:
        repo = g.get_repo(REPO)
        review = repo.get_pull(7).create_review(
            commit=repo.get_commit(HEAD),
            body="x" * 65_536,
            event="COMMENT",
            comments=[{"path": "app.py", "line": 2, "body": "y" * 65_536}],
        )
    assert len(review.body) == 65_536
    assert len(gh.review_comments(REPO, 7)) == 1


def test_review_on_an_older_head_uses_that_heads_diff(gh: FakeGitHub) -> None:
    gh.push(REPO, 7, NEW_HEAD, [{"filename": "other.py", "patch": NEW_PATCH}])
    old_only: list[ReviewComment] = [
        {"path": "app.py", "line": 22, "body": "valid in the old head's diff"}
    ]
    with client(gh) as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        assert pr.head.sha == NEW_HEAD
        assert [f.filename for f in pr.get_files()] == ["other.py"]
        review = pr.create_review(
            commit=repo.get_commit(HEAD), body="old", event="COMMENT", comments=old_only
        )
        assert review.commit_id == HEAD
        with pytest.raises(GithubException) as info:
            pr.create_review(
                commit=repo.get_commit(NEW_HEAD), body="new", event="COMMENT", comments=old_only
            )
        assert info.value.data["errors"] == [PATH_UNRESOLVED]
        pr.create_review(
            commit=repo.get_commit(NEW_HEAD),
            body="new",
            event="COMMENT",
            comments=[{"path": "other.py", "line": 2, "body": "added in the new head"}],
        )
    assert [c["commit_id"] for c in gh.review_comments(REPO, 7)] == [HEAD, NEW_HEAD]


def test_head_moves_between_two_requests(gh: FakeGitHub) -> None:
    gh.move_head_on("POST", r"/pulls/7/reviews$", REPO, 7, NEW_HEAD, [{"filename": "z"}])
    with client(gh) as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        assert pr.head.sha == HEAD
        review = pr.create_review(
            commit=repo.get_commit(HEAD),
            body="pinned",
            event="COMMENT",
            comments=[{"path": "app.py", "line": 2, "body": "x"}],
        )
        assert review.commit_id == HEAD
        assert repo.get_pull(7).head.sha == NEW_HEAD


def test_pending_review_and_only_one_per_user(gh: FakeGitHub) -> None:
    with client(gh) as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        pending = pr.create_review(commit=repo.get_commit(HEAD))
        assert pending.state == "PENDING"
        assert "submitted_at" not in pending.raw_data
        with pytest.raises(GithubException) as info:
            pr.create_review(commit=repo.get_commit(HEAD))
        assert info.value.data["errors"] == [ONE_PENDING]


def test_pending_review_comments_are_not_listed(gh: FakeGitHub) -> None:
    with client(gh) as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        pr.create_review(
            commit=repo.get_commit(HEAD), comments=[{"path": "app.py", "line": 2, "body": "p"}]
        )
        assert list(pr.get_review_comments()) == []
    assert len(gh.review_comments(REPO, 7)) == 1


def test_rename_without_changes_has_nothing_to_comment_on(gh: FakeGitHub) -> None:
    renamed = {"filename": "b.py", "previous_filename": "a.py", "status": "renamed", "patch": ""}
    gh.push(REPO, 7, NEW_HEAD, [renamed])
    bad = cast("list[ReviewComment]", [{"path": "b.py", "line": 1, "body": "x"}])
    data = review_422(gh, sha=NEW_HEAD, body="s", event="COMMENT", comments=bad)
    assert data["errors"] == [to_sentence([LINE_NOT_IN_DIFF, HUNK_BLANK])]
    with client(gh) as g:
        [f] = g.get_repo(REPO).get_pull(7).get_files()
    assert (f.previous_filename, f.changes) == ("a.py", 0)


def test_no_approving_your_own_pull_request(gh: FakeGitHub) -> None:
    gh.add_pull(REPO, 12, head_sha=NEW_HEAD, files=[], user_login="github-actions[bot]")
    with client(gh) as g:
        repo = g.get_repo(REPO)
        with pytest.raises(GithubException) as info:
            repo.get_pull(12).create_review(commit=repo.get_commit(NEW_HEAD), event="APPROVE")
        assert info.value.data["errors"] == [OWN_APPROVE]
        approved = repo.get_pull(7).create_review(commit=repo.get_commit(HEAD), event="APPROVE")
        assert approved.state == "APPROVED"


def test_seeded_reviews_and_comments_are_listed(gh: FakeGitHub) -> None:
    gh.seed_review(
        REPO, 7, body="earlier", comments=[{"path": "app.py", "line": 3, "body": "<!-- fp:1 -->"}]
    )
    gh.seed_issue_comment(REPO, 7, "<!-- depthgate:summary -->\nold")
    with client(gh) as g:
        pr = g.get_repo(REPO).get_pull(7)
        assert [r.body for r in pr.get_reviews()] == ["earlier"]
        assert [c.body for c in pr.get_review_comments()] == ["<!-- fp:1 -->"]
        assert pr.get_review_comments()[0].diff_hunk.endswith("+import json")
        assert [c.body for c in pr.get_issue_comments()] == ["<!-- depthgate:summary -->\nold"]


# --- issue comments ----------------------------------------------------------------------------


def test_issue_comment_create_edit_get_and_too_long(gh: FakeGitHub) -> None:
    with client(gh) as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        comment = pr.create_issue_comment("summary v1")
        assert comment.user.login == "github-actions[bot]"
        assert comment.html_url.endswith(f"/pull/7#issuecomment-{comment.id}")
        comment.edit("summary v2")
        assert pr.get_issue_comment(comment.id).body == "summary v2"
        for attempt in (
            lambda: pr.create_issue_comment("x" * 65_537),
            lambda: comment.edit("x" * 65_537),
        ):
            with pytest.raises(GithubException) as info:
                attempt()
            assert info.value.status == 422
            assert info.value.data == {
                "message": "Validation Failed",
                "errors": [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ],
                "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
                "status": "422",
            }
        pr.create_issue_comment("x" * 65_536)
    assert [c["body"][:10] for c in gh.issue_comments(REPO, 7)] == ["summary v2", "x" * 10]


# --- auth --------------------------------------------------------------------------------------


def test_bad_or_missing_token_is_401(gh: FakeGitHub) -> None:
    with client(gh, "ghs_nope") as g, pytest.raises(BadCredentialsException) as info:
        g.get_repo(REPO)
    assert info.value.data == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }
    with httpx.Client(base_url=gh.url) as h:
        missing = h.post(f"/repos/{REPO}/issues/7/comments", json={"body": "x"})
    assert missing.status_code == 401
    assert missing.json()["message"] == "Requires authentication"
    assert gh.issue_comments(REPO, 7) == []


def test_read_only_token_reads_but_every_write_is_403(gh: FakeGitHub) -> None:
    with client(gh, "ghs_test_read") as g:
        repo = g.get_repo(REPO)
        pr = repo.get_pull(7)
        assert len(list(pr.get_files())) == 2
        attempts: list[Callable[[], object]] = [
            lambda: pr.create_issue_comment("x"),
            lambda: pr.create_review(commit=repo.get_commit(HEAD), body="x", event="COMMENT"),
            lambda: repo.create_check_run("depthgate", HEAD),
        ]
        for attempt in attempts:
            with pytest.raises(GithubException) as info:
                attempt()
            assert info.value.status == 403
            assert info.value.data["message"] == "Resource not accessible by integration"
    assert gh.issue_comments(REPO, 7) == []
    assert gh.reviews(REPO, 7) == []
    assert [r.status for r in gh.writes()] == [403, 403, 403]


def test_token_scoped_to_repositories_and_permissions(gh: FakeGitHub) -> None:
    gh.add_repo("acme/secret", private=True)
    gh.add_token("ghs_scoped", repositories=[REPO], permissions={"pull_requests": "read"})
    with client(gh, "ghs_scoped") as g:
        with pytest.raises(GithubException) as info:
            g.get_repo("acme/secret")
        assert info.value.status == 404
        pr = g.get_repo(REPO).get_pull(7)
        with pytest.raises(GithubException) as info:
            pr.create_issue_comment("x")
        assert info.value.status == 403
        with pytest.raises(GithubException) as info:
            g.get_user().login  # noqa: B018 (an installation token cannot read /user)
        assert info.value.status == 403


# --- limits and faults -------------------------------------------------------------------------


def test_secondary_rate_limit_with_retry_after(gh: FakeGitHub) -> None:
    gh.secondary_rate_limit("POST", r"/issues/7/comments$", retry_after=17)
    with client(gh) as g:
        pr = g.get_repo(REPO).get_pull(7)
        with pytest.raises(RateLimitExceededException) as info:
            pr.create_issue_comment("summary")
        assert info.value.status == 403
        assert info.value.headers is not None
        assert info.value.headers["retry-after"] == "17"
        assert info.value.data["message"].startswith(
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
            "again."
        )
        assert gh.issue_comments(REPO, 7) == []
        pr.create_issue_comment("summary")  # the fault is spent
    assert [r.status for r in gh.writes()] == [403, 201]


def test_pygithub_retry_recognises_the_secondary_limit(gh: FakeGitHub) -> None:
    gh.secondary_rate_limit("POST", r"/issues/7/comments$", retry_after=0, times=2)
    with client(gh, retry=GithubRetry(total=3)) as g:
        g.get_repo(REPO).get_pull(7).create_issue_comment("summary")
    assert [r.status for r in gh.writes()] == [403, 403, 201]
    assert len(gh.issue_comments(REPO, 7)) == 1


def test_secondary_429_and_primary_limit(gh: FakeGitHub) -> None:
    gh.secondary_rate_limit("GET", r"/pulls/7$", status=429, retry_after=None)
    gh.primary_rate_limit("GET", r"/pulls/7/files$", reset_in=30)
    with httpx.Client(base_url=gh.url, headers={"Authorization": "token ghs_test_read"}) as h:
        too_many = h.get(f"/repos/{REPO}/pulls/7")
        exhausted = h.get(f"/repos/{REPO}/pulls/7/files")
        fine = h.get(f"/repos/{REPO}/pulls/7/files")
    assert too_many.status_code == 429
    assert "retry-after" not in too_many.headers
    assert exhausted.status_code == 403
    assert exhausted.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(exhausted.headers["x-ratelimit-reset"]) - time.time() <= 31
    assert exhausted.json()["message"].startswith("API rate limit exceeded")
    assert fine.status_code == 200


def test_fail_next_any_status_and_times(gh: FakeGitHub) -> None:
    gh.fail_next("*", r"/pulls/7$", 502, times=2)
    with client(gh) as g:
        repo = g.get_repo(REPO)
        for _ in range(2):
            with pytest.raises(GithubException) as info:
                repo.get_pull(7)
            assert info.value.status == 502
        assert repo.get_pull(7).number == 7


def test_content_creation_limit_per_minute() -> None:
    with serve_github(content_limits=(2, 500)) as fake:
        fake.add_pull(REPO, 1, head_sha=HEAD, files=[])
        with client(fake) as g:
            pr = g.get_repo(REPO).get_pull(1)
            pr.create_issue_comment("one")
            pr.create_issue_comment("two")
            with pytest.raises(GithubException) as info:
                pr.create_issue_comment("three")
            assert info.value.status == 403
            assert info.value.headers is not None
            assert info.value.headers["retry-after"] == "60"
        assert len(fake.issue_comments(REPO, 1)) == 2


# --- the request log and response headers ------------------------------------------------------


def test_request_log_and_response_headers(gh: FakeGitHub) -> None:
    with client(gh, per_page=100) as g:
        pr = g.get_repo(REPO).get_pull(7)
        list(pr.get_files())
        pr.create_issue_comment("hello")
    reads, writes = gh.reads(), gh.writes()
    assert [r.path for r in reads] == [
        f"/repos/{REPO}",
        f"/repos/{REPO}/pulls/7",
        f"/repos/{REPO}/pulls/7/files",
    ]
    assert reads[2].query == {"per_page": "100"}
    assert [(w.method, w.path, w.body, w.status) for w in writes] == [
        ("POST", f"/repos/{REPO}/issues/7/comments", {"body": "hello"}, 201)
    ]
    first = gh.requests[0]
    assert first.headers["authorization"] == "token [redacted]"
    assert "ghs_test_write" not in repr(gh.requests)
    assert all(k == k.lower() for k in first.headers)
    assert first.body is None
    assert first.actor == "github-actions[bot]"
    stamps = [r.ts for r in gh.requests]
    assert stamps == sorted(stamps)
    with httpx.Client(base_url=gh.url, headers={"Authorization": "Bearer ghs_test_read"}) as h:
        ok = h.get(f"/repos/{REPO}")
        unknown = h.get("/repos/acme/widgets/teleport")
    assert ok.headers["content-type"] == "application/json; charset=utf-8"
    assert ok.headers["x-github-api-version-selected"] == "2022-11-28"
    assert ok.headers["x-github-request-id"]
    assert ok.headers["x-ratelimit-limit"] == "5000"
    assert ok.headers["x-ratelimit-used"] == "1"
    assert ok.headers["x-ratelimit-remaining"] == "4999"
    assert ok.headers["x-ratelimit-resource"] == "core"
    assert ok.headers["x-ratelimit-reset"]
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Not Found"
    assert gh.requests[-1].path == "/repos/acme/widgets/teleport"
    assert gh.requests[-1].status == 404


# --- contents and check runs -------------------------------------------------------------------


def test_contents_base64_by_ref(gh: FakeGitHub) -> None:
    gh.add_contents(REPO, ".github/depthgate.yml", "version: 1\n")
    gh.add_contents(REPO, ".github/depthgate.yml", "version: 2\n", ref="feature")
    with client(gh) as g:
        repo = g.get_repo(REPO)
        default = repo.get_contents(".github/depthgate.yml")
        assert not isinstance(default, list)
        assert default.decoded_content == b"version: 1\n"
        assert default.encoding == "base64"
        at_ref = repo.get_contents(".github/depthgate.yml", ref="feature")
        assert not isinstance(at_ref, list)
        assert at_ref.decoded_content == b"version: 2\n"
        with pytest.raises(GithubException) as info:
            repo.get_contents("missing.yml")
        assert info.value.status == 404
    big = "line of text\n" * 20
    gh.add_contents(REPO, "big.txt", big)
    with httpx.Client(base_url=gh.url, headers={"Authorization": "token ghs_test_read"}) as h:
        content = h.get(f"/repos/{REPO}/contents/big.txt").json()["content"]
    assert "\n" in content
    assert base64.b64decode(content) == big.encode()


def test_check_runs_create_update_and_caps(gh: FakeGitHub) -> None:
    with client(gh) as g:
        repo = g.get_repo(REPO)
        run = repo.create_check_run(
            "depthgate",
            HEAD,
            status="in_progress",
            output={"title": "Reviewing", "summary": "started"},
        )
        assert run.status == "in_progress"
        assert run.head_sha == HEAD
        run.edit(conclusion="success", output={"title": "Done", "summary": "s", "text": "t"})
        assert run.status == "completed"
        assert run.conclusion == "success"
        with pytest.raises(GithubException) as info:
            run.edit(output={"title": "Big", "summary": "x" * 65_536})
        assert info.value.status == 422
        assert "Only 65535 characters are allowed; 65536 were supplied." in str(
            info.value.data["message"]
        )
        with pytest.raises(GithubException) as info:
            repo.create_check_run("depthgate", "f" * 40)
        assert info.value.status == 422
    [stored] = gh.check_runs(REPO)
    assert stored["output"]["title"] == "Done"
    assert stored["output"]["text"] == "t"
    assert stored["conclusion"] == "success"


# --- the GitHub App ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_app_installation_token(gh: FakeGitHub, app_key: tuple[str, str]) -> None:
    private, public = app_key
    gh.add_app(42, public_key=public)
    gh.add_installation(99, app_id=42, account="acme")
    auth = Auth.AppAuth(42, private)
    with GithubIntegration(
        auth=auth, base_url=gh.url, seconds_between_requests=None, seconds_between_writes=None
    ) as gi:
        inst = gi.get_repo_installation("acme", "widgets")
        assert inst.id == 99
        token = gi.get_access_token(99)
        assert token.token.startswith("ghs_")
        assert token.expires_at is not None
        with gi.get_github_for_installation(99) as g:
            comment = g.get_repo(REPO).get_pull(7).create_issue_comment("from the app")
            assert comment.user.login == "depthgate[bot]"
    with client(gh, token=token.token) as g:
        assert g.get_repo(REPO).get_pull(7).number == 7
    minted = [r for r in gh.requests if r.path.endswith("/access_tokens")]
    assert [r.status for r in minted] == [201, 201]


def test_app_token_scoped_to_named_repositories(gh: FakeGitHub, app_key: tuple[str, str]) -> None:
    private, public = app_key
    gh.add_repo("acme/other")
    gh.add_app(42, public_key=public)
    gh.add_installation(99, app_id=42, account="acme")
    jwt_token = Auth.AppAuth(42, private).create_jwt()
    headers = {"Authorization": f"Bearer {jwt_token}"}
    with httpx.Client(base_url=gh.url, headers=headers) as h:
        minted = h.post(
            "/app/installations/99/access_tokens",
            json={"repositories": ["widgets"], "permissions": {"pull_requests": "read"}},
        )
        refused = h.post(
            "/app/installations/99/access_tokens", json={"permissions": {"administration": "write"}}
        )
        unknown_repo = h.post("/app/installations/99/access_tokens", json={"repositories": ["x"]})
    assert minted.status_code == 201
    body = minted.json()
    assert body["permissions"] == {"pull_requests": "read"}
    assert [r["full_name"] for r in body["repositories"]] == [REPO]
    assert refused.status_code == 422
    assert unknown_repo.status_code == 422
    with client(gh, token=body["token"]) as g:
        assert g.get_repo(REPO).get_pull(7).number == 7
        with pytest.raises(GithubException) as info:
            g.get_repo("acme/other")
        assert info.value.status == 404
        with pytest.raises(GithubException) as info:
            g.get_repo(REPO).get_pull(7).create_issue_comment("x")
        assert info.value.status == 403


def test_app_jwt_is_checked(gh: FakeGitHub, app_key: tuple[str, str]) -> None:
    private, public = app_key
    gh.add_app(42, public_key=public)
    gh.add_installation(99, app_id=42, account="acme")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    good = {"iat": now - 60, "exp": now + 300, "iss": "42"}
    cases = {
        "wrong key": jwt.encode(good, other, algorithm="RS256"),
        "expired": jwt.encode({**good, "exp": now - 1}, private, algorithm="RS256"),
        "too long": jwt.encode({**good, "exp": now + 3600}, private, algorithm="RS256"),
        "unknown app": jwt.encode({**good, "iss": "7"}, private, algorithm="RS256"),
        "HS256": jwt.encode(good, "secret-of-32-bytes-at-the-least!", algorithm="HS256"),
        "not a JWT": "ghs_test_write",
    }
    with httpx.Client(base_url=gh.url) as h:
        for name, value in cases.items():
            r = h.get("/app/installations/99", headers={"Authorization": f"Bearer {value}"})
            assert r.status_code == 401, name
        ok = h.get(
            "/app/installations/99",
            headers={"Authorization": f"Bearer {jwt.encode(good, private, algorithm='RS256')}"},
        )
    assert ok.status_code == 200
    assert ok.json()["account"]["login"] == "acme"


def test_hook_deliveries_list_and_redeliver(gh: FakeGitHub, app_key: tuple[str, str]) -> None:
    private, public = app_key
    gh.add_app(42, public_key=public)
    failed = gh.add_delivery(status_code=500, action="synchronize", delivered_at=time.time() - 5)
    gh.add_delivery(status_code=200, action="opened")
    headers = {"Authorization": f"Bearer {Auth.AppAuth(42, private).create_jwt()}"}
    with httpx.Client(base_url=gh.url, headers=headers) as h:
        page = h.get("/app/hook/deliveries", params={"per_page": 1})
        assert [d["action"] for d in page.json()] == ["opened"]
        assert 'rel="next"' in page.headers["link"]
        listed = h.get("/app/hook/deliveries").json()
        assert [d["status_code"] for d in listed] == [200, 500]
        again = h.post(f"/app/hook/deliveries/{failed['id']}/attempts")
        assert again.status_code == 202
    redelivered = [d for d in gh.deliveries() if d["redelivery"]]
    assert [d["guid"] for d in redelivered] == [failed["guid"]]
