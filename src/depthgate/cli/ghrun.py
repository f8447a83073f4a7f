"""``depthgate review`` on a pull request: ``--pr OWNER/REPO#N``, or inside GitHub Actions.

An entry point (it reads the environment and files, and turns results into exit codes): settings
from flags and the environment, one run of :func:`depthgate.core.prreview.review_pull_request`, and
what the run leaves behind -- text on stdout and, in Actions, the step outputs, the job summary,
workflow-command annotations and the handoff file. Inside Actions every secret is masked with
``::add-mask::`` before anything else is printed.

Exit codes (design §3): 0 complete (also: nothing to do, a fork PR without secrets), 1 findings
at or above ``--fail-on``, 2 usage or configuration, 3 gateway failure, 4 GitHub failure.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from depthgate.cli.flags import Flags, review_options, secret_values
from depthgate.configfile import load_config
from depthgate.core.errors import (
    EXIT_FINDINGS,
    EXIT_GATEWAY,
    EXIT_GITHUB,
    EXIT_OK,
    UsageError,
)
from depthgate.core.handoff import RunContext, build_handoff, render_markdown
from depthgate.core.handoff import annotation as handoff_annotation
from depthgate.core.models import SEVERITY_ORDER
from depthgate.core.pipeline import ReviewOptions, ReviewOutcome
from depthgate.core.plan import render_text
from depthgate.core.ports import GitHubErrorClass
from depthgate.core.prreview import PrReviewOptions, PrRun, review_pull_request, summary_markdown
from depthgate.core.report import outcome_to_dict, render_outcome_text
from depthgate.core.routes import LoadedConfig
from depthgate.core.sanitize import SanitizePolicy
from depthgate.gateway.client import GatewaySettings, HttpGateway
from depthgate.github.actions import (
    Kind,
    action_outputs,
    add_mask,
    annotation,
    append_summary,
    decide,
    group,
    read_event,
    write_outputs,
)
from depthgate.github.client import GitHubSettings, PullRequestClient, parse_pr_ref

ACTIONS_BOT = "github-actions[bot]"
MAX_WARNINGS = 10
__all__ = ["Flags", "actions_review", "parse_pr_ref", "resolve", "run_review"]
_MARKER = re.compile(r"\n*<!-- depthgate:summary .*? -->", re.DOTALL)


@dataclass(frozen=True)
class GitHubRun:
    """Everything one GitHub run needs, resolved from flags and the environment."""

    loaded: LoadedConfig
    gateway: GatewaySettings
    github: GitHubSettings
    review: ReviewOptions
    fail_on: str | None
    dry_run: bool
    command: str
    handoff_path: Path | None
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
) -> int:
    with PullRequestClient(repo, number, cfg.github) as client:
        trusted = cfg.bot_login or client.viewer_login()
        options = PrReviewOptions(
            review=cfg.review,
            dry_run=cfg.dry_run,
            trusted_authors=frozenset({trusted}) if trusted else None,
        )
        if trusted is None:
            err.write(
                "depthgate: warning: could not tell which login this token writes as; set "
                "DEPTHGATE_BOT_LOGIN so comments by others cannot pose as depthgate's\n"
            )
        run = asyncio.run(_run(client, cfg, options))
    return _report(run, f"{repo}#{number}", cfg, out, err, actions=actions, fork=fork)


async def _run(client: PullRequestClient, cfg: GitHubRun, options: PrReviewOptions) -> PrRun:
    async with HttpGateway(cfg.gateway, cfg.loaded.config.routes) as gateway:
        return await review_pull_request(client, cfg.loaded, gateway, options)


def _report(
    run: PrRun,
    ref: str,
    cfg: GitHubRun,
    out: TextIO,
    err: TextIO,
    *,
    actions: ActionsIO | None,
    fork: bool,
) -> int:
    outcome = run.outcome
    gh_fail = run.github_failure
    note: dict[str, Any] | None = None
    if gh_fail is not None or (outcome is not None and not outcome.complete):
        ctx = RunContext(
            command=cfg.command,
            base_url=cfg.gateway.base_url,
            show_host=cfg.gateway.show_host,
            pr=ref,
            head_sha=run.pr.head_sha if run.pr else None,
            github_host=cfg.github.api_url,
            review_id=run.review_id,
            posted=run.posted if run.review_id is not None else None,
            config=cfg.loaded,
        )
        note = build_handoff(outcome, ctx, github=gh_fail)
        if cfg.handoff_path is not None:
            cfg.handoff_path.parent.mkdir(parents=True, exist_ok=True)
            cfg.handoff_path.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")

    # a read-only token on a fork PR is expected, not a failure of the job
    fork_read_only = (
        gh_fail is not None and gh_fail.error_class is GitHubErrorClass.FORBIDDEN and fork
    )
    if gh_fail is not None:
        code = EXIT_OK if fork_read_only else EXIT_GITHUB
    elif note is not None:
        code = EXIT_GATEWAY
    elif cfg.fail_on and outcome and _at_or_above(outcome, cfg.fail_on):
        code = EXIT_FINDINGS
    else:
        code = EXIT_OK

    if cfg.output_format == "json":
        doc: dict[str, Any] = outcome_to_dict(outcome, note) if outcome else {"handoff": note}
        doc["pull_request"] = _run_dict(run, ref)
        out.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        _print_text(run, ref, out, grouped=actions is not None)
    if note is not None:
        err.write(render_markdown(note))

    if actions is not None:
        if fork_read_only:
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
            out.write(annotation("warning", warning, title="depthgate") + "\n")
        counts = outcome.counts() if outcome else {"reviewed": 0, "failed": 0}
        write_outputs(
            actions.output_path,
            action_outputs(
                comments_posted=run.posted,
                hunks_reviewed=counts["reviewed"],
                hunks_failed=counts["failed"],
                handoff_path=str(cfg.handoff_path) if note and cfg.handoff_path else "",
            ),
        )
        append_summary(actions.summary_path, _job_summary(run, note, cfg.review.sanitize))
    return code


def _at_or_above(outcome: ReviewOutcome, severity: str) -> bool:
    bar = SEVERITY_ORDER[severity]
    return any(SEVERITY_ORDER[c.severity] >= bar for c in outcome.comments) or any(
        SEVERITY_ORDER[s.finding.severity] >= bar for s in outcome.summary_only
    )


def _run_dict(run: PrRun, ref: str) -> dict[str, Any]:
    return {
        "pr": ref,
        "head_sha": run.pr.head_sha if run.pr else None,
        "review_id": run.review_id,
        "comments_posted": run.posted,
        "duplicates": run.duplicates,
        "demoted": run.demoted,
        "reused_hunks": run.reused,
        "summary_comment_id": run.summary_id,
        "summary_written": run.summary_written,
        "skipped": run.skipped,
        "notes": run.notes,
        "review_request": run.review_payload,
        "github_failure": run.github_failure.to_dict() if run.github_failure else None,
    }


def _print_text(run: PrRun, ref: str, out: TextIO, *, grouped: bool) -> None:
    head = f" at {run.pr.head_sha[:12]}" if run.pr else ""
    if run.plan is not None and grouped:
        with group(out, "depthgate: routing plan"):
            out.write(render_text(run.plan, verbose=True))
    if run.outcome is not None:
        if grouped:
            with group(out, "depthgate: review"):
                out.write(render_outcome_text(run.outcome))
        else:
            out.write(render_outcome_text(run.outcome))
    parts = [f"depthgate: {ref}{head}:"]
    if run.skipped:
        parts.append(run.skipped)
    if run.review_id is not None:
        parts.append(f"posted review {run.review_id} with {run.posted} inline comments")
    elif run.review_payload is not None and not run.github_failure:
        n = len(run.review_payload.get("comments", []))  # type: ignore[arg-type]
        parts.append(f"{n} new inline comments (not posted: dry run)" if n else "no new comments")
    if run.duplicates:
        parts.append(f"{run.duplicates} already on the PR")
    if run.summary_written:
        parts.append(f"summary comment {run.summary_id} written")
    if run.github_failure:
        parts.append(f"GitHub failure: {run.github_failure.message}")
    out.write(" ".join(parts) + "\n")


def _job_summary(run: PrRun, note: Mapping[str, Any] | None, policy: SanitizePolicy) -> str:
    """The job summary: the PR's summary as posted (or as it would have been), every comment
    that was not posted, and the handoff note."""
    parts: list[str] = []
    if run.skipped and run.outcome is None:
        parts.append(f"## depthgate\n\n{run.skipped}\n")
    outcome = run.outcome
    if outcome is not None:
        parts.append(_MARKER.sub("", summary_markdown(run, policy)) + "\n")
        if run.review_id is None and outcome.comments:
            parts.append(
                "\n<details><summary>Inline comments not posted "
                f"({len(outcome.comments)})</summary>\n"
            )
            parts += [
                f"- `{c.path}`:{c.line} ({c.side}) **{c.severity}** {c.title}"
                for c in outcome.comments
            ]
            parts.append("\n</details>\n")
    if note is not None:
        parts.append("\n" + render_markdown(note))
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
    gateway = GatewaySettings.from_config(loaded.config.gateway, env)
    github = GitHubSettings.from_env(env)
    review = review_options(flags, loaded, gateway, env)
    return GitHubRun(
        loaded=loaded,
        gateway=gateway,
        github=github,
        review=review,
        fail_on=flags.fail_on,
        dry_run=flags.dry_run,
        command=command,
        handoff_path=Path(flags.handoff) if flags.handoff else default_handoff,
        bot_login=env.get("DEPTHGATE_BOT_LOGIN") or bot_login,
        output_format=flags.output_format,
    )


# --------------------------------------------------------------------------------------------
# Inside GitHub Actions


def actions_review(
    flags: Flags,
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    *,
    smoke: Callable[[], int],
) -> int:
    """``depthgate review`` with no ``--diff``/``--pr`` inside Actions: the event decides."""
    loaded = load_config(flags.config)
    for value in secret_values(loaded, env):
        out.write(add_mask(value) + "\n")
    event_name = env.get("GITHUB_EVENT_NAME", "")
    if not event_name:
        raise UsageError("GITHUB_EVENT_NAME is not set: is this running inside GitHub Actions?")
    event = read_event(env.get("GITHUB_EVENT_PATH"))
    decision = decide(event_name, event)
    actions = ActionsIO(env.get("GITHUB_OUTPUT"), env.get("GITHUB_STEP_SUMMARY"))
    if decision.kind is Kind.SMOKE:
        return smoke()
    if decision.kind is Kind.SKIP:
        return _neutral(actions, out, f"skipped: {decision.reason}")
    pr = event.pull_request
    repo = event.repository.full_name if event.repository else None
    assert pr is not None  # decide() reviews only events with a pull request
    if repo is None:
        raise UsageError(f"{env.get('GITHUB_EVENT_PATH')}: the event names no repository")
    gw = loaded.config.gateway
    if decision.fork and gw.auth != "none" and not env.get(gw.api_key_env):
        return _neutral(
            actions,
            out,
            f"{decision.reason}: GitHub gives workflows no secrets on fork pull requests, so "
            "there is no gateway key and nothing was reviewed. Install the depthgate GitHub App "
            "to review fork PRs (README: 'Fork pull requests').",
        )
    temp = Path(env.get("RUNNER_TEMP") or ".")
    cfg = resolve(
        flags,
        loaded,
        env,
        command=f"depthgate review ({event_name} {event.action} on {repo}#{pr.number})",
        bot_login=ACTIONS_BOT,
        default_handoff=temp / "depthgate-handoff.json",
    )
    return run_review(repo, pr.number, cfg, out, err, actions=actions, fork=decision.fork)


def _neutral(actions: ActionsIO, out: TextIO, message: str) -> int:
    out.write(annotation("notice", message, title="depthgate") + "\n")
    write_outputs(actions.output_path, action_outputs())
    append_summary(actions.summary_path, f"## depthgate\n\n{message}\n")
    return EXIT_OK
