"""The one run step every surface shares: ``review --diff``, ``review --pr``, the Action and the
GitHub App all review through here (design §8, style habits 5 and 14).

A surface turns its inputs -- flags, the environment (read once, at its entry point), an Actions
event, a webhook job -- into :class:`RunSettings`, calls :func:`review_diff` or
:func:`review_pr`, and renders the :class:`RunResult`. Everything that must mean the same on
every surface is decided here, once:

* the exit code (design §3) and the one fail-on rule: a finding at or above ``--fail-on``
  fails the run whether it was placed inline or could only go to the summary;
* the gateway session (one :class:`~depthgate.gateway.client.HttpGateway` per run);
* the settings every run resolves alike: the gateway's from the config and the environment,
  the review options with the secrets the sanitizer redacts (:func:`depthgate.cli.flags.
  secret_values`, the same list Actions masks);
* the handoff note: its context, and its file (parent folders created);
* redaction: the note and the ``--format json`` document hold no secret the run knows and no
  credential shape; the log redacts this run's gateway key and URL (:mod:`depthgate.logs`).

Surfaces differ only where the product does: the App adds a check run, Actions annotations,
outputs and the job summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from depthgate.cli.flags import Flags, review_options
from depthgate.cli.progress import Progress
from depthgate.core.diff import Diff
from depthgate.core.errors import EXIT_FINDINGS, EXIT_GATEWAY, EXIT_GITHUB, EXIT_OK
from depthgate.core.guidance import Guidance
from depthgate.core.handoff import RunContext, build_handoff
from depthgate.core.models import SEVERITY_ORDER
from depthgate.core.pipeline import ReviewOptions, ReviewOutcome, review
from depthgate.core.plan import Plan
from depthgate.core.ports import GitHubErrorClass, GitHubFailure, PullRequestInfo
from depthgate.core.prreview import PrReviewOptions, PrRun, PullRequestPort, review_pull_request
from depthgate.core.report import outcome_to_dict
from depthgate.core.routes import LoadedConfig
from depthgate.core.secretscan import redact_data
from depthgate.core.source import Sources
from depthgate.gateway.client import GatewaySettings, HttpGateway
from depthgate.logs import protect


@dataclass(frozen=True)
class RunSettings:
    """What one review run needs, resolved from a surface's inputs."""

    loaded: LoadedConfig
    gateway: GatewaySettings
    review: ReviewOptions
    command: str  # as the handoff note names it
    fail_on: str | None = None
    handoff_path: Path | None = None


@dataclass(frozen=True)
class PrTarget:
    """The pull request of a ``review_pr`` run, and how its surface treats it."""

    ref: str  # OWNER/REPO#N
    github_host: str | None = None
    dry_run: bool = False
    trusted_authors: frozenset[str] | None = None
    proceed: Callable[[], bool] | None = None  # the App: False once a newer head arrived
    fork: bool = False  # a fork PR in Actions: a read-only token is expected there
    full: bool = False  # review every hunk again (/depthgate review --full)
    # the source port (design §9): the changed files for the PR and its diff; None: diff only
    sources: Callable[[PullRequestInfo, Diff], Sources] | None = None
    # the guideline files, read with the sources (see PrReviewOptions.guidelines)
    guidelines: Callable[[], tuple[Sequence[Guidance], Sequence[str]]] | None = None


@dataclass(frozen=True)
class RunResult:
    code: int
    outcome: ReviewOutcome | None
    handoff: dict[str, Any] | None  # the note, when the review did not complete
    pr: PrRun | None = None  # review_pr only
    fork_read_only: bool = False  # GitHub refused the writes of a fork PR's read-only token
    secrets: tuple[str, ...] = ()  # redacted from every output of the run


def run_settings(
    flags: Flags,
    loaded: LoadedConfig,
    env: Mapping[str, str],
    *,
    command: str,
    default_handoff: Path | None = None,
) -> RunSettings:
    gateway = GatewaySettings.from_config(loaded.config.gateway, env)
    return RunSettings(
        loaded=loaded,
        gateway=gateway,
        review=review_options(flags, loaded, env),
        command=command,
        fail_on=flags.fail_on,
        handoff_path=Path(flags.handoff) if flags.handoff else default_handoff,
    )


def fails_on(outcome: ReviewOutcome, severity: str) -> bool:
    """The fail-on rule: any finding at or above ``severity``, inline or summary-only."""
    bar = SEVERITY_ORDER[severity]
    return any(SEVERITY_ORDER[c.severity] >= bar for c in outcome.comments) or any(
        SEVERITY_ORDER[s.finding.severity] >= bar for s in outcome.summary_only
    )


def exit_code(
    outcome: ReviewOutcome | None,
    *,
    fail_on: str | None,
    github_failure: GitHubFailure | None = None,
    fork_read_only: bool = False,
) -> int:
    """Design §3: 4 GitHub failed, 3 the gateway did, 1 findings at or above fail-on, else 0."""
    if github_failure is not None:
        return EXIT_OK if fork_read_only else EXIT_GITHUB
    if outcome is not None and not outcome.complete:
        return EXIT_GATEWAY
    if fail_on and outcome is not None and fails_on(outcome, fail_on):
        return EXIT_FINDINGS
    return EXIT_OK


async def review_diff(
    plan: Plan, settings: RunSettings, *, progress: Progress | None = None
) -> RunResult:
    """Review a planned local diff; nothing is posted."""
    async with _gateway(settings) as gateway:
        outcome = await review(plan, gateway, _with_progress(settings.review, progress))
    note = None
    if not outcome.complete:
        note = _handoff(settings, outcome, RunContext(**_gateway_context(settings)))
    code = exit_code(outcome, fail_on=settings.fail_on)
    return RunResult(code, outcome, note, secrets=settings.review.sanitize.secrets)


async def review_pr(
    client: PullRequestPort,
    settings: RunSettings,
    target: PrTarget,
    *,
    progress: Progress | None = None,
) -> RunResult:
    """Review a pull request and post (unless ``target.dry_run``) through ``client``."""
    options = PrReviewOptions(
        review=_with_progress(settings.review, progress),
        dry_run=target.dry_run,
        trusted_authors=target.trusted_authors,
        proceed=target.proceed,
        full=target.full,
        sources=target.sources,
        guidelines=target.guidelines,
    )
    async with _gateway(settings) as gateway:
        run = await review_pull_request(client, settings.loaded, gateway, options)
    outcome, failure = run.outcome, run.github_failure
    note = None
    if failure is not None or (outcome is not None and not outcome.complete):
        ctx = RunContext(
            **_gateway_context(settings),
            pr=target.ref,
            head_sha=run.pr.head_sha if run.pr else None,
            github_host=target.github_host,
            review_id=run.review_id,
            posted=run.posted if run.review_id is not None else None,
            config=settings.loaded,
        )
        note = _handoff(settings, outcome, ctx, failure)
    fork_read_only = (
        failure is not None and failure.error_class is GitHubErrorClass.FORBIDDEN and target.fork
    )
    code = exit_code(
        outcome, fail_on=settings.fail_on, github_failure=failure, fork_read_only=fork_read_only
    )
    return RunResult(
        code, outcome, note, run, fork_read_only, secrets=settings.review.sanitize.secrets
    )


def result_document(result: RunResult, ref: str | None = None) -> dict[str, Any]:
    """The ``--format json`` document (design §3): the review, plus the pull request's run."""
    outcome = result.outcome
    doc: dict[str, Any] = (
        outcome_to_dict(outcome, result.handoff) if outcome else {"handoff": result.handoff}
    )
    if result.pr is not None:
        doc["pull_request"] = _pr_dict(result.pr, ref or "")
    # paths, headers, reasons, notes and GitHub's messages are the PR's, the model's, GitHub's
    redacted: dict[str, Any] = redact_data(doc, result.secrets)
    return redacted


def _with_progress(options: ReviewOptions, progress: Progress | None) -> ReviewOptions:
    return options if progress is None else replace(options, progress=progress)


def _gateway(settings: RunSettings) -> HttpGateway:
    # httpx logs each request's URL; a repository's config may name other variables than the
    # ones the entry point protected
    gw = settings.gateway
    protect(settings.review.sanitize.secrets, (gw.base_url,), show_host=gw.show_host)
    return HttpGateway(gw, settings.loaded.config.routes)


def _gateway_context(settings: RunSettings) -> dict[str, Any]:
    return {
        "command": settings.command,
        "base_url": settings.gateway.base_url,
        "show_host": settings.gateway.show_host,
        "secrets": settings.review.sanitize.secrets,
    }


def _handoff(
    settings: RunSettings,
    outcome: ReviewOutcome | None,
    ctx: RunContext,
    github: GitHubFailure | None = None,
) -> dict[str, Any]:
    note = build_handoff(outcome, ctx, github=github)
    path = settings.handoff_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    return note


def _pr_dict(run: PrRun, ref: str) -> dict[str, Any]:
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
        "review_request": run.review_payload.to_json() if run.review_payload else None,
        "github_failure": run.github_failure.to_dict() if run.github_failure else None,
    }
