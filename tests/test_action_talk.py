"""The Action's side of talking to depthgate (issue #13 items 2, 3, 5): ``issue_comment`` runs
``/depthgate`` commands and ``pull_request_review_comment`` answers replies in depthgate's own
threads -- ``depthgate review`` as a subprocess with the environment GitHub Actions sets, against
the fake GitHub (whose tokens write as github-actions[bot], as GITHUB_TOKEN does) and the fake
upstream. What GitHub received is the oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import FILES, HEAD_TEXT, OUTSIDERS
from tests.fakes.upstream import Behavior, FakeUpstream, error
from tests.test_action_e2e import HEAD, NUMBER, PAYLOADS, REPO, Action

OPENED = json.loads((PAYLOADS / "opened.payload.json").read_text())
BOT = "github-actions[bot]"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:  # test_action_e2e's: a module's fixtures are its own
    with serve_github() as fake:
        fake.add_pull(REPO, NUMBER, head_sha=HEAD, files=FILES)
        yield fake
        assert not fake.errors


@pytest.fixture
def action(gh: FakeGitHub, fake: FakeUpstream, tmp_path: Path) -> Action:
    fake.default = Behavior(echo_finding=True)
    return Action(gh, fake, tmp_path)


def comment_event(
    gh: FakeGitHub, body: str, login: str, association: str, *, action: str = "created"
) -> dict[str, Any]:
    """issue_comment as GitHub sends it for a comment on the PR (the comment really exists)."""
    seeded = gh.seed_issue_comment(REPO, NUMBER, body, user_login=login)
    return {
        "action": action,
        "repository": OPENED["repository"],
        "sender": {"login": login, "type": "User"},
        "issue": {
            "number": NUMBER,
            "state": "open",
            "pull_request": {"url": f"{gh.url}/repos/{REPO}/pulls/{NUMBER}"},
        },
        "comment": {
            "id": seeded["id"],
            "body": body,
            "user": {"login": login, "type": "User"},
            "author_association": association,
        },
    }


def reply_event(reply: dict[str, Any], **pr_changes: Any) -> dict[str, Any]:
    pr = {**OPENED["pull_request"], **pr_changes}
    return {
        "action": "created",
        "repository": OPENED["repository"],
        "sender": reply["user"],
        "pull_request": pr,
        "comment": {
            "id": reply["id"],
            "in_reply_to_id": reply["in_reply_to_id"],
            "body": reply["body"],
            "user": {"login": reply["user"]["login"], "type": reply["user"]["type"]},
        },
    }


def repo_writes(gh: FakeGitHub) -> list[tuple[str, str]]:
    return [(w.method, w.path) for w in gh.writes()]


def test_after_an_outage_one_review_command_posts_the_review_exactly_once(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    fake.default = error(401, "Invalid API key", type_="auth_error")
    assert action().code == 3  # the push's review failed: nothing posted
    assert gh.reviews(REPO, NUMBER) == []
    fake.default = Behavior(echo_finding=True)
    gh.add_collaborator(REPO, "maria", "maintain")
    r = action("issue_comment", comment_event(gh, "/depthgate review", "maria", "MEMBER"))
    assert r.code == 0, r.stdout + r.stderr
    assert len(gh.reviews(REPO, NUMBER)) == 1
    assert [x["content"] for x in gh.reactions] == ["eyes"]
    assert r.outputs["hunks-reviewed"] == "3"
    # the same command again: every hunk is in the summary's marker, nothing new is posted
    again = action("issue_comment", comment_event(gh, "/depthgate review", "maria", "MEMBER"))
    assert again.code == 0, again.stderr
    assert fake.calls() == []
    assert len(gh.reviews(REPO, NUMBER)) == 1
    # --full sends every hunk again; every finding is already on the PR: no second review
    full = action("issue_comment", comment_event(gh, "/depthgate review --full", "maria", "MEMBER"))
    assert full.code == 0, full.stderr
    assert fake.calls()
    assert len(gh.reviews(REPO, NUMBER)) == 1


@pytest.mark.parametrize(
    ("login", "association", "role"),
    [*OUTSIDERS, (BOT, "NONE", None)],
)
def test_an_outsiders_command_writes_nothing_and_calls_no_gateway(
    action: Action,
    gh: FakeGitHub,
    fake: FakeUpstream,
    login: str,
    association: str,
    role: str | None,
) -> None:
    if role:
        gh.add_collaborator(REPO, login, role)
    r = action("issue_comment", comment_event(gh, "/depthgate review --full", login, association))
    assert r.code == 0, r.stderr
    assert repo_writes(gh) == []
    assert gh.reactions == []
    assert fake.calls() == []
    assert "::notice title=depthgate::not run:" in r.stdout


def test_help_plan_and_unknown_commands_get_one_reply_each_and_no_gateway_call(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    for body in ("/depthgate help", "/depthgate plan", "/depthgate reveiw"):
        r = action("issue_comment", comment_event(gh, body, "octocat", "OWNER"))
        assert r.code == 0, r.stderr
    replies = [c["body"] for c in gh.issue_comments(REPO, NUMBER) if "command-reply" in c["body"]]
    assert len(replies) == 3
    assert "| `/depthgate review --full` |" in replies[0]
    assert "**depthgate plan**" in replies[1]
    assert "review-deep" in replies[1]
    assert replies[2].startswith("That is not a depthgate command.")
    assert fake.calls() == []
    assert len(gh.reactions) == 3


@pytest.mark.parametrize(
    ("body", "action_name", "is_pr"),
    [
        ("thanks, looks good", "created", True),  # not a command
        ("> /depthgate review", "created", True),  # quoting one
        ("/depthgate review", "edited", True),  # an edit does not run it twice
        ("/depthgate review", "created", False),  # a comment on an issue
    ],
)
def test_other_comments_cost_no_github_read_at_all(
    action: Action, gh: FakeGitHub, fake: FakeUpstream, body: str, action_name: str, is_pr: bool
) -> None:
    event = comment_event(gh, body, "octocat", "OWNER", action=action_name)
    if not is_pr:
        del event["issue"]["pull_request"]
    r = action("issue_comment", event)
    assert r.code == 0, r.stderr
    assert gh.requests == []
    assert fake.calls() == []
    assert "::notice title=depthgate::skipped:" in r.stdout


def reviewed(action: Action, gh: FakeGitHub, tier: str = "deep") -> dict[str, Any]:
    """The push's review, and a depthgate comment of ``tier`` from it."""
    assert action().code == 0
    return next(c for c in gh.review_comments(REPO, NUMBER) if f"tier={tier}" in c["body"])


@pytest.mark.parametrize(("tier", "model"), [("deep", "deep-model"), ("fast", "fast-model")])
def test_a_reply_in_a_depthgate_thread_is_answered_once_through_its_tiers_alias(
    action: Action, gh: FakeGitHub, fake: FakeUpstream, tier: str, model: str
) -> None:
    root = reviewed(action, gh, tier)
    assert root["user"]["login"] == BOT
    path = root["path"]
    gh.add_contents(REPO, path, HEAD_TEXT[path], ref=root["original_commit_id"])
    fake.default = Behavior(content='{"reply": "Because `cmd` comes from the request @all."}')
    human = gh.add_review_reply(REPO, NUMBER, root["id"], "Why is this a problem?", "alice")
    r = action("pull_request_review_comment", reply_event(human))
    assert r.code == 0, r.stdout + r.stderr
    answers = [c for c in gh.review_comments(REPO, NUMBER) if "depthgate:reply" in c["body"]]
    assert len(answers) == 1
    assert answers[0]["in_reply_to_id"] == root["id"]
    assert "Because" in answers[0]["body"]
    assert "@all" not in answers[0]["body"].replace("`@all`", "")  # no live mention
    (call,) = fake.calls()
    assert call.body["model"] == model  # the alias of the comment's tier (samples.ROUTES)
    user = call.body["messages"][1]["content"]
    assert "Why is this a problem?" in user
    # the code around the hunk, as a task of that tier sees it, read at the comment's commit
    if tier == "deep":  # the enclosing function whole
        context = user.split("Code around it (context):\n", 1)[1].split("\nYour comment:")[0]
        assert "--- app/auth.py: enclosing function run (lines 2-3)\n" in context
        assert "C2  def run(cmd):\nC3      return os.system(cmd)\n" in context
    else:  # fast, on a module-level line: a signature would be all, and there is none
        assert "Code around it" not in user
    # depthgate's own answer arrives as an event too: never answered
    again = action("pull_request_review_comment", reply_event(answers[0]))
    assert again.code == 0
    assert fake.calls() == []
    assert len([c for c in gh.review_comments(REPO, NUMBER) if "depthgate:reply" in c["body"]]) == 1


def test_a_reply_is_not_answered_when_the_gateway_fails_and_says_so_in_the_log(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    root = reviewed(action, gh)
    fake.default = error(500, "upstream down")
    human = gh.add_review_reply(REPO, NUMBER, root["id"], "Really?", "alice")
    r = action("pull_request_review_comment", reply_event(human))
    assert r.code == 0, r.stderr
    assert repo_writes(gh) == []
    assert "::warning title=depthgate reply::the gateway gave no usable answer" in r.stdout


def test_a_reply_in_someone_elses_thread_or_on_a_fork_without_secrets_gets_nothing(
    action: Action, gh: FakeGitHub, fake: FakeUpstream
) -> None:
    root = reviewed(action, gh)
    theirs = gh.add_review_reply(REPO, NUMBER, root["id"], "noted", "alice")
    nested = gh.add_review_reply(REPO, NUMBER, root["id"], "me too", "bob")
    nested["in_reply_to_id"] = theirs["id"]  # a thread depthgate did not start
    r = action("pull_request_review_comment", reply_event(nested))
    assert r.code == 0, r.stderr
    assert repo_writes(gh) == []
    assert fake.calls() == []
    fork_head = {**OPENED["pull_request"]["head"], "repo": {"full_name": "mallory/Hello-World"}}
    human = gh.add_review_reply(REPO, NUMBER, root["id"], "Why?", "mallory")
    forked = action(
        "pull_request_review_comment",
        reply_event(human, head=fork_head),
        DEPTHGATE_GATEWAY_KEY=None,
    )
    assert forked.code == 0, forked.stderr
    assert gh.requests == []
    assert "is from a fork" in forked.stdout
