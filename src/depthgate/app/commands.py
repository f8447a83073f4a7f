"""``/depthgate`` commands in pull-request comments, for the App (design §11).

The comment's first line is the command (:mod:`depthgate.core.commands` parses it strictly).
Only people with write access may run one: the event's ``author_association`` says so for an
owner, GitHub's collaborator-permission API where it does not; anyone else's command, a bot's and
depthgate's own do nothing visible. A command that runs is acknowledged with a reaction (eyes),
then:

* ``review`` -- the review of the PR's head, as on a push: what is not reviewed yet, failed hunks
  included, with its check run;
* ``review --full`` -- every hunk again (fingerprints still keep posted comments from repeating);
* ``plan`` -- a reply with the routing plan (each hunk's tier, alias and why);
* ``help`` -- a reply listing the commands; an unknown ``/depthgate ...`` gets the same.
"""

from __future__ import annotations

import logging

from depthgate.app.surface import Context, JobResult
from depthgate.core.commands import (
    HELP,
    Command,
    Permission,
    Unknown,
    Verb,
    may_write,
    parse_command,
    permission_needed,
)
from depthgate.core.diff import parse_github_files
from depthgate.core.markdown import Escape
from depthgate.core.plan import build_plan, render_text
from depthgate.github.client import PullRequestClient

log = logging.getLogger("depthgate.app.commands")
REPLY_MARK = "<!-- depthgate:command-reply -->"
MAX_PLAN_CHARS = 60_000


def command_of(ctx: Context) -> tuple[Command | Unknown, int, str] | None:
    """The command of this comment and who wrote it, or None when it is not one."""
    comment = ctx.payload.get("comment") or {}
    parsed = parse_command(comment.get("body"))
    if parsed is None:
        return None
    user = comment.get("user") or {}
    return parsed, int(comment["id"]), str(user.get("login") or "")


def allowed(ctx: Context, client: PullRequestClient, login: str) -> bool:
    comment = ctx.payload.get("comment") or {}
    user = comment.get("user") or {}
    bot = ctx.settings.bot_login or ctx.bot_login()
    if login == bot:
        return False
    decided = permission_needed(comment.get("author_association"), user.get("type"))
    if decided is Permission.ASK:
        return may_write(client.collaborator_permission(login))
    return decided is Permission.ALLOWED


def reply_text(parsed: Command | Unknown, client: PullRequestClient, ctx: Context) -> str | None:
    """The reply a command gets, or None when its answer is a review (the caller runs it)."""
    if isinstance(parsed, Unknown):
        return "That is not a depthgate command.\n\n" + HELP
    if parsed.verb is Verb.HELP:
        return HELP
    if parsed.verb is Verb.PLAN:
        diff = parse_github_files(client.files())
        # PR text (paths, hunk headers) inside a fence longer than any backtick run in it,
        # invisible characters removed and secrets redacted: it cannot leave the block
        plan = render_text(build_plan(diff, ctx.config), verbose=True)
        text = Escape().plain(plan)[:MAX_PLAN_CHARS]
        fence = "`" * max(3, _longest_backticks(text) + 1)
        return (
            f"**depthgate plan** (nothing was sent to the gateway)\n\n{fence}text\n{text}\n{fence}"
        )
    return None


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest


def ignored(why: str) -> JobResult:
    log.info("comment: %s", why)
    return JobResult("neutral", why)
