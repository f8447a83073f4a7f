"""Answers in depthgate's own review threads, for the App (design §11).

A person replies to a depthgate comment: depthgate answers once, in the thread, through the alias
of the tier that wrote the comment (its hidden state), with GitHub's ``diff_hunk``, the comment and
the thread so far as untrusted data (:mod:`depthgate.core.reply`). Never to a bot or to itself,
never past the PR's hourly budget (``review.replies_per_hour``), and nothing is posted when the
gateway fails (it is logged): a reply is a courtesy, not a review.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from depthgate.app.surface import Context, JobResult
from depthgate.cli.flags import Flags
from depthgate.cli.run import run_settings
from depthgate.core.findings import AnswerError
from depthgate.core.ports import GatewayError
from depthgate.core.reply import (
    ReplyRequest,
    ThreadMessage,
    build_reply_messages,
    comment_state,
    is_reply_by_depthgate,
    parse_reply,
    reply_marker,
    reply_schema,
    within_budget,
)
from depthgate.core.routes import Tier
from depthgate.core.sanitize import sanitize
from depthgate.gateway.client import HttpGateway
from depthgate.github.client import PullRequestClient

log = logging.getLogger("depthgate.app.replies")


def _time(stamp: Any) -> float:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def answer(ctx: Context, client: PullRequestClient, now: float) -> JobResult:
    comment = ctx.payload["comment"]
    user = comment.get("user") or {}
    bot = ctx.settings.bot_login or ctx.bot_login()
    if user.get("type") == "Bot" or user.get("login") == bot:
        return _quiet("a reply by a bot (depthgate answers people only)")
    root_id = int(comment["in_reply_to_id"])
    threads = client.review_threads()
    root = next((c for c in threads if c.get("id") == root_id), None)
    if root is None or (root.get("user") or {}).get("login") != bot:
        return _quiet("a reply in a thread depthgate did not start")
    state = comment_state(str(root.get("body") or ""))
    if state is None:
        return _quiet("the thread's first comment carries no depthgate state")
    ours = [c for c in threads if is_reply_by_depthgate(str(c.get("body") or ""))]
    budget = ctx.config.config.review.replies_per_hour
    if not within_budget([_time(c.get("created_at")) for c in ours], now, budget):
        return _quiet(f"the PR's reply budget ({budget} an hour) is spent")
    thread = tuple(
        ThreadMessage(str((c.get("user") or {}).get("login") or "?"), str(c.get("body") or ""))
        for c in sorted(threads, key=lambda c: _time(c.get("created_at")))
        if c.get("in_reply_to_id") == root_id
    )
    req = ReplyRequest(
        path=str(root.get("path") or ""),
        line=root.get("line"),
        side=str(root.get("side") or "RIGHT"),
        diff_hunk=str(root.get("diff_hunk") or ""),
        comment=str(root.get("body") or "").split("\n\n<sub>depthgate", 1)[0],
        thread=thread,
    )
    cfg = ctx.config.config
    tier = Tier(state.tier) if state.tier else Tier.LOGIC
    alias = cfg.tiers.alias(tier)
    settings = run_settings(Flags(), ctx.config, ctx.settings.env, command="depthgate reply")
    try:
        async with HttpGateway(settings.gateway, cfg.routes) as gateway:
            reply = await gateway.chat(
                alias, build_reply_messages(req), response_schema=reply_schema()
            )
        ctx.metrics.gateway_call(alias)
        text = parse_reply(reply.content)
    except (GatewayError, AnswerError) as exc:
        log.warning("reply to comment %s not posted: %s", comment.get("id"), exc)
        return JobResult("neutral", "the gateway gave no usable answer; nothing was posted")
    body = sanitize(text, settings.review.sanitize)
    footer = f"\n\n<sub>depthgate · {tier.value} · {alias}</sub>\n{reply_marker(root_id)}"
    client.reply_in_thread(root_id, body + footer)
    ctx.metrics.github_write("reply")
    return JobResult("success", f"answered in the thread of comment {root_id}")


def _quiet(why: str) -> JobResult:
    log.info("review comment: %s; not answered", why)
    return JobResult("neutral", why)
