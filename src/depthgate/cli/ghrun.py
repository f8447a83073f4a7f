"""``depthgate review`` on a pull request (``--pr OWNER/REPO#N``, or the event's PR inside GitHub
Actions, see :mod:`depthgate.cli.actions`): the GitHub settings, one run of the shared run step
(:func:`depthgate.cli.run.review_pr`) and how its result is shown -- text or JSON on stdout, the
handoff on stderr and, in Actions, the step outputs, the job summary and workflow-command
annotations.

Exit codes: those of the run step (design §3).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from depthgate.cli.flags import Flags
from depthgate.cli.progress import to_stream
from depthgate.cli.run import (
    PrTarget,
    RunResult,
    RunSettings,
    result_document,
    review_pr,
    run_settings,
)
from depthgate.core.guidance import guideline_requests, guidelines_read
from depthgate.core.handoff import annotation as handoff_annotation
from depthgate.core.handoff import render_markdown
from depthgate.core.markdown import Escape
from depthgate.core.plan import render_text
from depthgate.core.prreview import PrRun, summary_markdown
from depthgate.core.report import render_outcome_text
from depthgate.core.routes import LoadedConfig
from depthgate.core.sanitize import SanitizePolicy
from depthgate.core.summary import strip_marker
from depthgate.core.wording import plural
from depthgate.github.actions import (
    action_outputs,
    annotation,
    append_summary,
    group,
    no_commands,
    write_outputs,
)
from depthgate.github.client import GitHubSettings, PullRequestClient, parse_pr_ref
from depthgate.github.source import source_port

ACTIONS_BOT = "github-actions[bot]"
MAX_WARNINGS = 10
__all__ = ["ActionsIO", "Flags", "parse_pr_ref", "resolve", "run_review"]


@dataclass(frozen=True)
class GitHubRun:
    """Everything one GitHub run needs, resolved from flags and the environment."""

    run: RunSettings
    github: GitHubSettings
    dry_run: bool
    bot_login: str | None  # whose comments are depthgate's own; None: ask GitHub (GET /user)
    output_format: str = "text"


@dataclass(frozen=True)
class ActionsIO:
    """Where a run inside GitHub Actions reports: $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY."""

    output_path: str | None
    summary_path: str | None


def run_review(
    repo: str,
    number: int,
    cfg: GitHubRun,
    out: TextIO,
    err: TextIO,
    *,
    actions: ActionsIO | None = None,
    fork: bool = False,
    checkout: Path | None = None,
    full: bool = False,
    guidelines_at: str | None = None,
) -> int:
    """``checkout``: the Actions workspace, read for the code around the change where it holds
    the PR's head blobs (otherwise that code is read from GitHub). ``full``: every hunk again
    (``/depthgate review --full``). ``guidelines_at``: the commit to read the guideline files
    from, in the changed files' read, when the config came without them."""
    ref = f"{repo}#{number}"
    with PullRequestClient(repo, number, cfg.github) as client:
        trusted = cfg.bot_login or client.viewer_login()
        if trusted is None:
            err.write(
                "depthgate: warning: could not tell which login this token writes as; set "
                "DEPTHGATE_BOT_LOGIN so comments by others cannot pose as depthgate's\n"
            )
        review = cfg.run.loaded.config.review
        also = guideline_requests(review, guidelines_at) if guidelines_at else []
        port = source_port(client, cfg.run.loaded.config.limits, checkout=checkout, also=also)
        target = PrTarget(
            ref=ref,
            github_host=cfg.github.api_url,
            dry_run=cfg.dry_run,
            trusted_authors=frozenset({trusted}) if trusted else None,
            fork=fork,
            full=full,
            sources=port,
            guidelines=(
                (lambda: guidelines_read(review, port.extra(), at=guidelines_at[:12]))
                if guidelines_at
                else None
            ),
        )
        if actions is None:
            result = asyncio.run(review_pr(client, cfg.run, target, progress=to_stream(err)))
        else:
            # in the log, folded: the lines are there for whoever opens the step
            with group(out, "depthgate: review progress"):
                result = asyncio.run(review_pr(client, cfg.run, target, progress=to_stream(out)))
    _report(result, ref, cfg, out, err, actions=actions)
    return result.code


def _report(
    result: RunResult,
    ref: str,
    cfg: GitHubRun,
    out: TextIO,
    err: TextIO,
    *,
    actions: ActionsIO | None,
) -> None:
    run, outcome, note = result.pr, result.outcome, result.handoff
    assert run is not None
    secrets = cfg.run.review.sanitize.secrets
    md = Escape.of(secrets)
    if cfg.output_format == "json":
        out.write(json.dumps(result_document(result, ref), indent=2, ensure_ascii=False) + "\n")
    else:
        _print_text(run, ref, out, grouped=actions is not None, md=md)
    if note is not None:
        err.write(render_markdown(note, secrets))

    if actions is not None:
        if result.fork_read_only:
            out.write(
                annotation(
                    "notice",
                    "The token is read-only on this fork pull request, so depthgate could not "
                    "post; the findings are in the job summary. Install the depthgate GitHub "
                    "App to review fork PRs.",
                    title="depthgate",
                )
                + "\n"
            )
        elif note is not None:
            out.write(handoff_annotation(note) + "\n")
        # GitHub shows 10 warnings per step; the rest are in the log and the summary
        for warning in (outcome.warnings if outcome else [])[:MAX_WARNINGS]:
            out.write(annotation("warning", md.plain(warning), title="depthgate") + "\n")
        counts = outcome.counts() if outcome else {"reviewed": 0, "failed": 0}
        handoff_path = cfg.run.handoff_path
        write_outputs(
            actions.output_path,
            action_outputs(
                comments_posted=run.posted,
                hunks_reviewed=counts["reviewed"],
                hunks_failed=counts["failed"],
                handoff_path=str(handoff_path) if note and handoff_path else "",
            ),
        )
        append_summary(actions.summary_path, _job_summary(run, note, cfg.run.review.sanitize))


def _print_text(run: PrRun, ref: str, out: TextIO, *, grouped: bool, md: Escape) -> None:
    head = f" at {run.pr.head_sha[:12]}" if run.pr else ""
    # in Actions, paths, headers and the model's reasons could spell a workflow command
    if run.plan is not None and grouped:
        with group(out, "depthgate: routing plan"), no_commands(out):
            out.write(md.plain(render_text(run.plan, verbose=True)))
    if run.outcome is not None:
        if grouped:
            with group(out, "depthgate: review"), no_commands(out):
                out.write(render_outcome_text(run.outcome, md.secrets))
        else:
            out.write(render_outcome_text(run.outcome, md.secrets))
    parts = [f"depthgate: {ref}{head}:"]
    if run.skipped:
        parts.append(run.skipped)
    if run.review_id is not None:
        parts.append(f"posted review {run.review_id} with {plural(run.posted, 'inline comment')}")
    elif run.review_payload is not None and not run.github_failure:
        n = len(run.review_payload.comments)
        new = plural(n, "new inline comment")
        parts.append(f"{new} (not posted: dry run)" if n else "no new comments")
    if run.duplicates:
        parts.append(f"{run.duplicates} already on the PR")
    if run.summary_written:
        parts.append(f"summary comment {run.summary_id} written")
    if run.github_failure:
        parts.append(f"GitHub failure: {run.github_failure.message}")
    out.write(" ".join(md.plain(" ".join(parts)).splitlines()) + "\n")  # one line, always


def _job_summary(run: PrRun, note: Mapping[str, Any] | None, policy: SanitizePolicy) -> str:
    """The job summary: the PR's summary as posted (or as it would have been), every comment
    that was not posted, and the handoff note."""
    md = Escape.of(policy.secrets)
    parts: list[str] = []
    if run.skipped and run.outcome is None:
        parts.append(f"## depthgate\n\n{md.text(run.skipped)}\n")
    outcome = run.outcome
    if outcome is not None:
        parts.append(strip_marker(summary_markdown(run, policy)) + "\n")
        if run.review_id is None and outcome.comments:
            parts.append(
                "\n<details><summary>Inline comments not posted "
                f"({len(outcome.comments)})</summary>\n"
            )
            parts += [  # the title was sanitized as prose, on one line
                f"- {md.code(c.path)}:{c.line} ({md.text(c.side)}) **{md.text(c.severity)}** "
                f"{c.title}"
                for c in outcome.comments
            ]
            parts.append("\n</details>\n")
    if note is not None:
        parts.append("\n" + render_markdown(note, policy.secrets))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Settings


def resolve(
    flags: Flags,
    loaded: LoadedConfig,
    env: Mapping[str, str],
    *,
    command: str,
    bot_login: str | None,
    default_handoff: Path | None = None,
) -> GitHubRun:
    return GitHubRun(
        run=run_settings(flags, loaded, env, command=command, default_handoff=default_handoff),
        github=GitHubSettings.from_env(env),
        dry_run=flags.dry_run,
        bot_login=env.get("DEPTHGATE_BOT_LOGIN") or bot_login,
        output_format=flags.output_format,
    )
