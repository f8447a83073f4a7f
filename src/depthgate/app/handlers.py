"""The GitHub App's review: the Action's review of the pull request
(:func:`depthgate.core.prreview.review_pull_request`: one review, one sticky summary, no duplicates,
incremental) plus a check run ``depthgate`` on the head -- in progress while the review runs,
then completed with ``success``, ``neutral`` or ``failure`` and, on failure, the handoff note
in its output.

A job is retried by the queue when this raises: only for what a later attempt can fix (GitHub
5xx, rate limits, the network). A gateway failure or a GitHub refusal (401, 403, 404) fails the
job for good: the check run says why and what to do. A retry posts nothing twice: the
comments carry their fingerprints and the summary its marker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from depthgate.app.errors import AppAuthError
from depthgate.app.jobs import COMMAND_EVENT, REPLY_EVENT, RERUN_EVENTS
from depthgate.app.surface import REVIEW_EVENTS, App, Context, JobResult, ReviewJob
from depthgate.cli import talk
from depthgate.cli.flags import Flags, secret_values
from depthgate.cli.progress import Progress, progress_line
from depthgate.cli.run import PrTarget, RunResult, review_pr, run_settings
from depthgate.core.errors import DepthgateError
from depthgate.core.guidance import skip_reason
from depthgate.core.handoff import render_markdown
from depthgate.core.markdown import Escape
from depthgate.core.ports import GitHubErrorClass, GitHubFailure, TaskProgress
from depthgate.core.prreview import PrRun, summary_markdown
from depthgate.core.sanitize import SanitizePolicy
from depthgate.core.wording import plural
from depthgate.github.actions import parse_event
from depthgate.github.client import GitHubSettings, PullRequestClient
from depthgate.github.source import source_port

log = logging.getLogger("depthgate.app")
CHECK_NAME = "depthgate"
# GitHub failures a later attempt may get past (a 401: with a re-minted token); anything else
# is final for this head.
RETRIED = frozenset(
    {
        GitHubErrorClass.SERVER,
        GitHubErrorClass.CONNECTION,
        GitHubErrorClass.RATE_LIMITED,
        GitHubErrorClass.AUTH,
    }
)


def register(app: App) -> None:
    app.on(*REVIEW_EVENTS)(review_job)
    app.on(*RERUN_EVENTS)(rerun_job)
    app.on(COMMAND_EVENT)(command_job)
    app.on(REPLY_EVENT)(reply_job)
    app.on_failure(job_failed)


async def reply_job(ctx: Context) -> JobResult:
    """A reply in a review thread: answered when the thread is depthgate's
    (:func:`depthgate.cli.talk.answer`)."""
    client = _client(ctx, ctx.job.repository, ctx.pull_request()[2])
    said = await talk.answer(
        ctx.payload.get("comment") or {},
        client,
        ctx.config,
        ctx.settings.env,
        bot=ctx.settings.bot_login or ctx.bot_login(),
        now=time.time(),
        on_gateway_call=ctx.metrics.gateway_call,
    )
    if said.outcome == "answered":
        ctx.metrics.github_write("reply")
        return JobResult("success", said.why)
    log.info("review comment: %s; not answered", said.why)
    return JobResult("neutral", said.why)


async def command_job(ctx: Context) -> JobResult:
    """A ``/depthgate`` command in a PR comment (:func:`depthgate.cli.talk.command`)."""
    comment = ctx.payload.get("comment") or {}
    client = _client(ctx, ctx.job.repository, ctx.pull_request()[2])
    said = talk.command(comment, client, ctx.config, bot=ctx.settings.bot_login or ctx.bot_login())
    if said.outcome == "ignored":
        log.info("comment: %s", said.why)
        return JobResult("neutral", said.why)
    ctx.metrics.github_write("reaction")
    if said.outcome == "answered":
        ctx.metrics.github_write("comment")
        return JobResult("success", said.why)
    head = client.info().head_sha
    return await _review(ctx, client, _open_check_run(client, ctx, head), head=head, full=said.full)


async def review_job(ctx: Context) -> JobResult:
    client = _client(ctx, ctx.job.repository, ctx.pull_request()[2])
    head = ctx.job.head_sha or ""
    skip = _skip(ctx)
    if skip is not None:  # said in a neutral check run, never silent
        summary = f"Not reviewed: {Escape().text(skip)}."  # names a label, a login
        client.finish_check_run(None, CHECK_NAME, head, "neutral", _output("Skipped", summary))
        ctx.metrics.github_write("check_run")
        return JobResult("neutral", summary)
    return await _review(ctx, client, _open_check_run(client, ctx, head))


def _skip(ctx: Context) -> str | None:
    """The repository's skip rule that applies to the PR of this event, if any."""
    try:
        pr = parse_event(ctx.payload).pull_request
    except DepthgateError:
        return None
    return skip_reason(ctx.config.config.review.skip, pr.facts()) if pr is not None else None


def _output(title: str, summary: str, text: str = "") -> dict[str, str]:
    return {"title": title, "summary": summary, "text": text}


async def rerun_job(ctx: Context) -> JobResult:
    """Re-run on depthgate's check: review that head again -- what failed or was never reviewed
    (the summary's marker holds what was) -- and complete the same check run."""
    check = ctx.payload.get("check_run")
    if isinstance(check, dict) and check.get("name") != CHECK_NAME:
        return JobResult("neutral", f"not depthgate's check ({check.get('name')!r}): ignored")
    head = ctx.job.head_sha or ""
    client = _client(ctx, ctx.job.repository, ctx.pull_request()[2])
    earlier = int(check["id"]) if isinstance(check, dict) and "id" in check else None
    if earlier is None:  # a re-run of the whole suite: depthgate's run in it
        earlier = client.find_check_run(CHECK_NAME, head, app_slug=_app_slug(ctx), completed=True)
    if earlier is None:
        check_id = _open_check_run(client, ctx, head)
    else:
        client.resume_check_run(earlier)
        ctx.metrics.github_write("check_run")
        check_id = earlier
    return await _review(ctx, client, check_id)


async def _review(
    ctx: Context,
    client: PullRequestClient,
    check_id: int,
    *,
    head: str | None = None,
    full: bool = False,
) -> JobResult:
    job, app = ctx.job, ctx.settings
    head = head or job.head_sha or ""
    settings = run_settings(
        Flags(),
        ctx.config,
        app.env,
        command=f"depthgate App: {job.event} (delivery {job.delivery_id})",
    )
    bot = app.bot_login or ctx.bot_login()
    target = PrTarget(
        ref=f"{job.repository}#{job.pr_number}",
        github_host=app.api_url,
        trusted_authors=frozenset({bot}) if bot else None,
        proceed=lambda: not ctx.superseded(),
        full=full,
        sources=source_port(client, ctx.config.config.limits),  # with the installation token
    )
    result = await review_pr(client, settings, target, progress=_progress(job.key))
    run = result.pr
    assert run is not None
    _count(ctx, run)
    failure = run.github_failure
    if failure is not None and failure.error_class in RETRIED:
        # the queue retries with backoff (after a 401, with a fresh installation token); the
        # check run stays in progress until then, and the next attempt completes it
        raise failure
    if run.pr is not None and head and run.pr.head_sha != head:
        # a late delivery: the PR had moved on when this job read it, so what was reviewed is
        # another head's -- this head's check run must not carry it
        conclusion, title, summary, text = _moved_on(run.pr.head_sha, head)
    else:
        conclusion, title, summary, text = _verdict(result, settings.review.sanitize)
    if result.handoff is not None:
        # the queue logs the job's conclusion; the reason and the fix are here
        log.warning("job %s: %s: %s", job.key, title.lower(), _reason(result.handoff))
    client.finish_check_run(
        check_id, CHECK_NAME, head, conclusion, {"title": title, "summary": summary, "text": text}
    )
    ctx.metrics.github_write("check_run")
    return JobResult(conclusion, title, run.review_id)


def _open_check_run(client: PullRequestClient, ctx: Context, head: str) -> int:
    """This job's check run on ``head``: on a retry, the one an earlier attempt left in
    progress (its worker killed, or a retried GitHub failure), so that none stays in progress
    for ever; else a new one."""
    if ctx.job.attempt > 1:
        earlier = client.find_check_run(CHECK_NAME, head, app_slug=_app_slug(ctx))
        if earlier is not None:
            return earlier
    check_id = client.start_check_run(CHECK_NAME, head)
    ctx.metrics.github_write("check_run")
    return check_id


def _app_slug(ctx: Context) -> str | None:
    login = ctx.settings.bot_login or ctx.bot_login()
    return login.removesuffix("[bot]") if login and login.endswith("[bot]") else None


def _moved_on(now: str, head: str) -> tuple[Any, str, str, str]:
    summary = (
        f"The PR's head is now `{now[:12]}`; this delivery was for `{head[:12]}`. The newer "
        "head's check run has its review."
    )
    return "neutral", "Superseded by a newer push", summary, ""


def _verdict(result: RunResult, policy: SanitizePolicy) -> tuple[Any, str, str, str]:
    """(conclusion, title, summary, text) of the check run."""
    run, outcome = result.pr, result.outcome
    assert run is not None
    if result.handoff is not None:
        summary = render_markdown(result.handoff, policy.secrets)
        return "failure", "Review incomplete", summary, _summary_text(run, policy)
    skipped = Escape.of(policy.secrets).text(run.skipped or "")
    if skipped.startswith("superseded"):
        return "neutral", "Superseded by a newer push", skipped, ""
    if outcome is None:
        if run.pr is not None and run.pr.state != "open":
            return "neutral", f"Not reviewed: the PR is {run.pr.state}", skipped, ""
        return "success", "Nothing new to review", skipped, ""
    counts = outcome.counts()
    title = f"{plural(run.posted, 'comment')} on {plural(counts['reviewed'], 'reviewed hunk')}"
    return "success", title, _summary_text(run, policy), ""


def _reason(note: Mapping[str, Any]) -> str:
    gh, gw = note.get("github"), note["gateway"]
    if gh:
        cause = f"GitHub {gh['error_class']} while trying to {gh['step']}"
    else:
        cause = f"{gw['error_class']} from {gw['alias']} (HTTP {gw['http_status'] or '-'})"
    hunks = note["hunks"]
    return (
        f"{cause}; {hunks['reviewed']}/{hunks['total']} hunks reviewed. Next: {note['next_action']}"
    )


def _summary_text(run: PrRun, policy: SanitizePolicy) -> str:
    if run.outcome is not None:
        return summary_markdown(run, policy)
    return Escape.of(policy.secrets).text(run.skipped or "")


def _count(ctx: Context, run: PrRun) -> None:
    if run.outcome is not None:
        # the calls of failed tasks under their error class, every other call as "none"
        failed: dict[str, int] = {}
        for f in run.outcome.failures:
            calls = f.retries + 1 if f.sent else 0
            for _ in range(calls):
                ctx.metrics.gateway_call(f.alias, f.error_class.value)
            failed[f.alias] = failed.get(f.alias, 0) + calls
        for alias, usage in run.outcome.usage.items():
            for _ in range(max(0, usage.calls - failed.get(alias, 0))):
                ctx.metrics.gateway_call(alias, "none")
    if run.review_id is not None:
        ctx.metrics.github_write("review")
    if run.summary_written:
        ctx.metrics.github_write("summary")


def job_failed(ctx: Context | None, job: ReviewJob | None, error: str) -> None:
    """The queue gave up on a job: the check run on its head says so, and what to do."""
    if ctx is None or job is None or job.pr_number is None or not job.head_sha:
        return
    client = _client(ctx, job.repository, job.pr_number)
    # the error may quote GitHub's or the gateway's answer: this server's secrets are redacted
    # by value, not only by shape
    md = Escape.of(secret_values(ctx.config, ctx.settings.env))
    try:
        earlier = client.find_check_run(CHECK_NAME, job.head_sha, app_slug=_app_slug(ctx))
        client.finish_check_run(
            earlier,  # the attempts' check run, completed; a new one only if none was started
            CHECK_NAME,
            job.head_sha,
            "failure",
            {
                "title": "Review failed",
                "summary": f"depthgate gave up after {job.attempt} attempts: "
                f"{md.text(error)}\n\nFix the cause, then redeliver the webhook delivery "
                f"{md.code(job.delivery_id)} (or run `depthgate reconcile`).",
                "text": "",
            },
        )
    except (GitHubFailure, AppAuthError) as exc:  # the job's failure is logged already
        log.warning("job %s: could not mark the check run failed: %s", job.key, exc.message)


def _progress(key: str) -> Progress:
    def tell(p: TaskProgress) -> None:
        level = logging.DEBUG if p.status == "sent" else logging.INFO
        log.log(level, "job %s: %s", key, progress_line(p).removeprefix("depthgate: "))

    return tell


def _client(ctx: Context, repository: str, number: int) -> PullRequestClient:
    settings = GitHubSettings(token="", api_url=ctx.settings.api_url)
    return PullRequestClient(repository, number, settings, github=ctx.github())
