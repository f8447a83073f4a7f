"""Talking to depthgate (design §11): ``/depthgate`` commands and answers in its own review
threads -- one step the GitHub App and the Action share, as :mod:`depthgate.cli.run` is for a
review.

A surface hands over the event's ``comment`` object, a GitHub client for the PR, the config and
depthgate's own login on that surface (the App's bot, ``github-actions[bot]``); it keeps only
what differs there: the App's metrics and job results, the Action's annotations.

**Commands.** The comment's first line is the command (:mod:`depthgate.core.commands` parses it
strictly). Only people with write access may run one: the event's ``author_association`` says
so for an owner, GitHub's collaborator-permission API where it does not; anyone else's command,
a bot's and depthgate's own do nothing visible. A command that runs is acknowledged with a
reaction (eyes), then ``plan`` and ``help`` (and an unknown ``/depthgate ...``) are answered
with a reply here, and ``review [--full]`` is left to the surface's review run.

**Replies.** A person replies to a depthgate comment: depthgate answers once, in the thread,
through the alias of the tier that wrote the comment (its hidden state), with GitHub's
``diff_hunk``, the comment and the thread so far as untrusted data (:mod:`depthgate.core.reply`).
Never to a bot or to itself, never past the PR's hourly budget (``review.replies_per_hour``),
and nothing is posted when the gateway fails: a reply is a courtesy, not a review.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from depthgate.cli.flags import Flags
from depthgate.cli.run import run_settings
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
from depthgate.core.context import ContextBuilder, render_blocks
from depthgate.core.diff import parse_github_files
from depthgate.core.findings import AnswerError
from depthgate.core.markdown import Escape, fence_for
from depthgate.core.plan import build_plan, render_text
from depthgate.core.ports import GatewayError, GitHubFailure
from depthgate.core.reply import (
    ReplyRequest,
    ThreadMessage,
    build_reply_messages,
    comment_state,
    hunk_of,
    is_reply_by_depthgate,
    parse_reply,
    reply_marker,
    reply_schema,
    within_budget,
)
from depthgate.core.routes import LoadedConfig, Tier
from depthgate.core.sanitize import sanitize
from depthgate.core.source import Blob, BlobRequest, FileSource, SourceMode, Sources
from depthgate.core.syntax import CodeIndex
from depthgate.gateway.client import HttpGateway

log = logging.getLogger("depthgate.talk")
REPLY_MARK = "<!-- depthgate:command-reply -->"
MAX_PLAN_CHARS = 60_000


class TalkClient(Protocol):
    """What commands and replies need from GitHub (:class:`~depthgate.github.client.
    PullRequestClient`)."""

    def files(self) -> list[dict[str, Any]]: ...
    def collaborator_permission(self, login: str) -> str | None: ...
    def react(self, comment_id: int, content: str) -> None: ...
    def create_comment(self, body: str) -> int: ...
    def review_threads(self) -> list[dict[str, Any]]: ...
    def reply_in_thread(self, root_id: int, body: str) -> int: ...
    def read_blobs(
        self, requests: Sequence[BlobRequest], *, max_bytes: int
    ) -> Mapping[str, Blob]: ...


@dataclass(frozen=True, slots=True)
class Said:
    """What a command or a reply came to: ``review`` (the surface runs the review, ``full`` or
    not), ``answered`` (a reply was posted), ``ignored`` (nothing visible was done; ``why`` is for
    the log), ``failed`` (the gateway gave no usable answer: nothing was posted)."""

    outcome: Literal["review", "answered", "ignored", "failed"]
    why: str
    full: bool = False


# --------------------------------------------------------------------------------------------
# Commands


def command(
    comment: Mapping[str, Any], client: TalkClient, loaded: LoadedConfig, *, bot: str | None
) -> Said:
    """Run the command ``comment`` gives, if it is one and its author may: the reaction, then a
    reply (plan, help) or ``review`` for the surface to run."""
    parsed = parse_command(comment.get("body") if isinstance(comment.get("body"), str) else None)
    if parsed is None:
        return Said("ignored", "not a command")
    user = comment.get("user") or {}
    login = str(user.get("login") or "")
    if not _may_run(comment, client, login, bot):
        return Said("ignored", f"{login} may not run commands here (write access needed)")
    client.react(int(comment["id"]), "eyes")
    reply = reply_text(parsed, client, loaded)
    if reply is not None:
        client.create_comment(f"{reply}\n\n{REPLY_MARK}")
        return Said("answered", "answered the command")
    return Said("review", "review requested", full=isinstance(parsed, Command) and parsed.full)


def _may_run(comment: Mapping[str, Any], client: TalkClient, login: str, bot: str | None) -> bool:
    user = comment.get("user") or {}
    if not login or login == bot:
        return False
    decided = permission_needed(comment.get("author_association"), user.get("type"))
    if decided is Permission.ASK:
        return may_write(client.collaborator_permission(login))
    return decided is Permission.ALLOWED


def reply_text(parsed: Command | Unknown, client: TalkClient, loaded: LoadedConfig) -> str | None:
    """The reply a command gets, or None when its answer is a review (the surface runs it)."""
    if isinstance(parsed, Unknown):
        return "That is not a depthgate command.\n\n" + HELP
    if parsed.verb is Verb.HELP:
        return HELP
    if parsed.verb is Verb.PLAN:
        diff = parse_github_files(client.files())
        # PR text (paths, hunk headers) inside a fence longer than any backtick run in it,
        # invisible characters removed and secrets redacted: it cannot leave the block
        plan = render_text(build_plan(diff, loaded), verbose=True)
        text = Escape().plain(plan)[:MAX_PLAN_CHARS]
        fence = fence_for(text)
        return (
            f"**depthgate plan** (nothing was sent to the gateway)\n\n{fence}text\n{text}\n{fence}"
        )
    return None


# --------------------------------------------------------------------------------------------
# Replies in depthgate's own threads


async def answer(
    comment: Mapping[str, Any],
    client: TalkClient,
    loaded: LoadedConfig,
    env: Mapping[str, str],
    *,
    bot: str | None,
    now: float,
    on_gateway_call: Callable[[str], None] | None = None,
) -> Said:
    """Answer ``comment`` (a reply in a review thread) when the thread is depthgate's."""
    user = comment.get("user") or {}
    if user.get("type") == "Bot" or not bot or user.get("login") == bot:
        return Said("ignored", "a reply by a bot (depthgate answers people only)")
    root_id = comment.get("in_reply_to_id")
    if not isinstance(root_id, int):
        return Said("ignored", "a review comment that is not a reply")
    threads = client.review_threads()
    root = next((c for c in threads if c.get("id") == root_id), None)
    if root is None or (root.get("user") or {}).get("login") != bot:
        return Said("ignored", "a reply in a thread depthgate did not start")
    state = comment_state(str(root.get("body") or ""))
    if state is None:
        return Said("ignored", "the thread's first comment carries no depthgate state")
    ours = [c for c in threads if is_reply_by_depthgate(str(c.get("body") or ""))]
    budget = loaded.config.review.replies_per_hour
    if not within_budget([_time(c.get("created_at")) for c in ours], now, budget):
        return Said("ignored", f"the PR's reply budget ({budget} an hour) is spent")
    thread = tuple(
        ThreadMessage(str((c.get("user") or {}).get("login") or "?"), str(c.get("body") or ""))
        for c in sorted(threads, key=lambda c: _time(c.get("created_at")))
        if c.get("in_reply_to_id") == root_id
    )
    cfg = loaded.config
    tier = Tier(state.tier) if state.tier else Tier.LOGIC
    req = ReplyRequest(
        path=str(root.get("path") or ""),
        line=root.get("line"),
        side=str(root.get("side") or "RIGHT"),
        diff_hunk=str(root.get("diff_hunk") or ""),
        comment=str(root.get("body") or "").split("\n\n<sub>depthgate", 1)[0],
        thread=thread,
        context=_code_around(root, client, loaded, tier),
    )
    alias = cfg.tiers.alias(tier)
    settings = run_settings(Flags(), loaded, env, command="depthgate reply")
    try:
        async with HttpGateway(settings.gateway, cfg.routes) as gateway:
            reply = await gateway.chat(
                alias, build_reply_messages(req), response_schema=reply_schema()
            )
        if on_gateway_call is not None:
            on_gateway_call(alias)
        text = parse_reply(reply.content)
    except (GatewayError, AnswerError) as exc:
        log.warning("reply to comment %s not posted: %s", comment.get("id"), exc)
        return Said("failed", f"the gateway gave no usable answer ({exc}); nothing was posted")
    body = sanitize(text, settings.review.sanitize)
    footer = f"\n\n<sub>depthgate · {tier.value} · {alias}</sub>\n{reply_marker(root_id)}"
    client.reply_in_thread(root_id, body + footer)
    return Said("answered", f"answered in the thread of comment {root_id} through {alias}")


def _code_around(
    root: Mapping[str, Any], client: TalkClient, loaded: LoadedConfig, tier: Tier
) -> str:
    """The code around the commented hunk, as a review task of ``tier`` is shown it (design
    §9): the file read at the commit the comment was written on, one GitHub read. "" when it
    cannot be had -- the answer then has GitHub's ``diff_hunk`` only."""
    path = str(root.get("path") or "")
    rev = root.get("original_commit_id") or root.get("commit_id")
    hunk = hunk_of(path, str(root.get("diff_hunk") or ""))
    if hunk is None or not isinstance(rev, str) or not rev:
        return ""
    limits = loaded.config.limits
    try:
        blobs = client.read_blobs(
            [BlobRequest("new", rev=rev, path=path)], max_bytes=limits.source_max_file_bytes
        )
    except GitHubFailure as exc:
        log.info("no code around comment %s: %s", root.get("id"), exc.message)
        return ""
    text = blobs["new"].text if "new" in blobs else None
    if text is None:
        return ""
    index = CodeIndex(Sources(SourceMode.GITHUB, {path: FileSource(path, None, text)}))
    builder = ContextBuilder(
        index, [path], max_definition_lines=limits.max_definition_lines, own=[path]
    )
    return render_blocks(builder.blocks(tier.value, hunk), [hunk])


def _time(stamp: Any) -> float:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
