"""The handoff note: what the next person needs when a review did not complete (design §4).

It names the command that ran, what happened, every hunk's end state, what could not be seen,
the fallback that served (if any), the environment (versions, config hash, gateway profile and
host), and what to do next -- one message template per error class, each saying the cause and
the fix. It never carries a key, a token, a prompt or a model response: only ids, classes,
counts, paths and hunk headers. Pure: an outcome in, JSON-able data and Markdown out.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from depthgate import __version__
from depthgate.core.markdown import Escape
from depthgate.core.models import ErrorClass
from depthgate.core.pipeline import ReviewOutcome, TaskFailure
from depthgate.core.report import escalations_to_list
from depthgate.core.routes import LoadedConfig
from depthgate.core.secretscan import redact_data
from depthgate.core.wording import plural

if TYPE_CHECKING:  # PyGithub is imported only by runs that talk to GitHub
    from depthgate.core.ports import GitHubFailure

NEXT_ACTION = {
    ErrorClass.AUTH: (
        "The gateway rejected the credentials of alias {alias} (HTTP {status}). Check that the "
        "variable named by gateway.api_key_env holds a valid key for this gateway (LiteLLM "
        "answers 400 no_db_connection to an unknown key when it has no database). Fork pull "
        "requests get no secrets on `pull_request`."
    ),
    ErrorClass.UNKNOWN_ALIAS: (
        "The gateway does not know the model alias sent for {alias}. Add the alias on the "
        "gateway (LiteLLM: model_list[].model_name) or fix routes.{alias}.send_model in "
        "gateway-routes.yaml, then run `depthgate smoke`."
    ),
    ErrorClass.RATE_LIMITED: (
        "Alias {alias} stayed rate limited{after_retries}{wait}. Re-run later, lower "
        "routes.{alias}.concurrency, or raise the gateway's limits."
    ),
    ErrorClass.SERVER: (
        "The gateway or its upstream failed for {alias} (HTTP {status}){after_retries}. "
        "Check the gateway's health and logs for request {request_id}, then re-run."
    ),
    ErrorClass.TIMEOUT: (
        "Alias {alias} gave no answer in time{after_retries}. Raise "
        "routes.{alias}.timeout_s or check the upstream model's latency, then re-run."
    ),
    ErrorClass.CONNECTION: (
        "The gateway could not be reached for {alias}. Check the URL in the variable named by "
        "gateway.base_url_env and that the runner can reach it, then re-run."
    ),
    ErrorClass.BAD_RESPONSE: (
        "Alias {alias} answered, but not usably (invalid or empty JSON after one repair, or a cut-"
        "off answer). Check the model behind it and routes.{alias}.max_output_tokens; a model "
        "without structured output may need response_format: json_object or none."
    ),
    ErrorClass.CONTEXT_LENGTH: (
        "A task for {alias} exceeded the model's context window. Lower "
        "routes.{alias}.max_input_tokens in gateway-routes.yaml to the model's real limit."
    ),
    ErrorClass.BAD_REQUEST: (
        "The gateway rejected the request for {alias} as malformed (HTTP {status}). Check "
        "routes.{alias}.token_param (max_tokens or max_completion_tokens), temperature and "
        "response_format for this model."
    ),
    ErrorClass.MODEL_MISMATCH: (
        "Alias {alias} resolved to {model}, not its locked_model. Fix the gateway's routing, or "
        "update routes.{alias}.locked_model on purpose (or set on_model_mismatch: warn)."
    ),
}


@dataclass(frozen=True)
class RunContext:
    """Where the review ran: filled in by the entry point (CLI, Action, App)."""

    command: str
    base_url: str | None = None
    show_host: bool = False
    pr: str | None = None
    head_sha: str | None = None
    github_host: str | None = None
    review_id: int | None = None
    posted: int | None = None  # inline comments actually posted; None: nothing was posted
    step: str = "gateway"
    config: LoadedConfig | None = None  # when there is no outcome to take it from
    # exact values no part of the note may hold (the entry point's secrets); credential
    # shapes are redacted whatever this says
    secrets: tuple[str, ...] = ()


def next_action(failure: TaskFailure) -> str:
    wait = f" (Retry-After {failure.retry_after_s:g}s)" if failure.retry_after_s else ""
    return NEXT_ACTION[failure.error_class].format(
        alias=failure.alias,
        status=failure.http_status if failure.http_status is not None else "-",
        # "after 0 retries" reads as if depthgate had waited: say nothing when it did not retry
        after_retries=f" after {plural(failure.retries, 'retry')}" if failure.retries else "",
        wait=wait,
        request_id=failure.request_id or "(none)",
        model=failure.response_model or "(unknown)",
    )


def build_handoff(
    outcome: ReviewOutcome | None, ctx: RunContext, github: GitHubFailure | None = None
) -> dict[str, Any]:
    """The note as JSON-able data: for a gateway failure (``outcome`` has failures), or for a
    GitHub failure (``github``; ``outcome`` is None when the PR could not even be read)."""
    if outcome is None and github is None:
        raise ValueError("a handoff needs a failed outcome or a GitHub failure")
    primary = _primary(outcome.failures) if outcome and outcome.failures else None
    counts = outcome.counts() if outcome else {"total": 0, "reviewed": 0, "skipped": 0}
    hunks = outcome.hunks if outcome else []
    failed = [
        {"path": h.path, "header": h.header, "error_class": h.reason}
        for h in hunks
        if h.state == "failed"
    ]
    skipped_files = outcome.plan.classification.skipped_files if outcome else ()
    unseen = [
        f"{s.path}: {s.reason} ({s.detail})"
        for s in skipped_files
        if s.reason in ("too_large", "malformed", "binary_content")
    ]
    evidence_missing = [
        f"{f['path']} {f['header']}: not reviewed ({f['error_class']})" for f in failed
    ]
    evidence_missing += unseen
    uncertainty = []
    if failed:
        uncertainty.append(
            f"{len(failed)} of {counts['total']} hunks were not reviewed; they may hide "
            f"problems that no comment mentions."
        )
    if github is not None:
        if outcome is None:
            evidence_missing.append("the pull request itself: it could not be read")
            uncertainty.append("nothing was reviewed: the pull request could not be read.")
        else:
            uncertainty.append(
                f"the review ran ({counts['reviewed']} hunks reviewed) but GitHub refused "
                f"'{github.step}': what was posted is under 'posted'; the job summary lists "
                f"every finding."
            )
    if counts["reviewed"] and github is None:
        uncertainty.append(
            f"{counts['reviewed']} hunks were reviewed; their findings stand on their own and "
            f"were kept."
        )
    if outcome and outcome.fallback_used:
        uncertainty.append(f"declared fallback {outcome.fallback_used} served some tasks")
    if outcome:
        uncertainty += [w for w in outcome.warnings if "locked_model" in w]
    config = outcome.plan.config if outcome else ctx.config
    # paths, headers, escalation reasons and error messages come from the PR, the model and
    # the gateway: whatever they hold, the note holds no secret
    note = {
        "status": "failed_partial" if counts["reviewed"] and github is None else "failed",
        "step": github.step if github else ctx.step,
        "command": ctx.command,
        "pr": ctx.pr,
        "head_sha": ctx.head_sha,
        "gateway": {
            "base_url": _host(ctx.base_url) if ctx.show_host else "REDACTED",
            "profile": config.config.gateway.profile.value if config else None,
            "alias": primary.alias if primary else None,
            "error_class": primary.error_class.value if primary else None,
            "http_status": primary.http_status if primary else None,
            "request_id": primary.request_id if primary else None,
            "retries": primary.retries if primary else 0,
            "retry_after_s": primary.retry_after_s if primary else None,
            "response_model": primary.response_model if primary else None,
        },
        "github": github.to_dict() if github else None,
        "failures": [
            {
                "task": f.task_id,
                "alias": f.alias,
                "error_class": f.error_class.value,
                "http_status": f.http_status,
                "retries": f.retries,
                "sent": f.sent,
            }
            for f in (outcome.failures if outcome else [])
        ],
        "hunks": {
            "total": counts["total"],
            "reviewed": counts["reviewed"],
            "skipped": counts["skipped"],
            "failed": failed,
        },
        "posted": {
            "review_id": ctx.review_id,
            "inline_comments": ctx.posted if ctx.posted is not None else 0,
            "summary_only": len(outcome.summary_only) if outcome else 0,
        },
        "changed_files": [f.path for f in outcome.plan.diff.files] if outcome else [],
        "evidence_missing": evidence_missing,
        "fallback_used": outcome.fallback_used if outcome else None,
        "escalations": escalations_to_list(outcome) if outcome else [],
        "resolved_models": dict(outcome.response_models) if outcome else {},
        "remaining_uncertainty": uncertainty,
        "next_action": github.next_action if github else next_action(_must(primary)),
        "config_sha256": config.sha256 if config else None,
        "github_host": ctx.github_host,
        "versions": {
            "depthgate": __version__,
            "python": platform.python_version(),
        },
    }
    redacted: dict[str, Any] = redact_data(note, ctx.secrets)
    return redacted


def _must(failure: TaskFailure | None) -> TaskFailure:
    if failure is None:
        raise ValueError("a gateway handoff needs an outcome with failures")
    return failure


def _primary(failures: list[TaskFailure]) -> TaskFailure:
    """The failure that explains the run: a sent call's, before any task that was never sent."""
    sent = [f for f in failures if f.sent]
    return (sent or failures)[0]


def _host(url: str | None) -> str:
    return urlsplit(url).netloc if url else "REDACTED"


def _cause(note: Mapping[str, Any], md: Escape) -> str:
    gh, gw = note.get("github"), note["gateway"]
    if gh:
        status = gh["http_status"] if gh["http_status"] is not None else "-"
        return (
            f"**GitHub {md.text(gh['error_class'])}** while trying to {md.text(gh['step'])} "
            f"(HTTP {md.text(status)}, request id {md.code(gh['request_id'] or '-')}): "
            f"{md.text(gh['message'])}"
        )
    status = gw["http_status"] if gw["http_status"] is not None else "-"
    return (
        f"**{md.text(gw['error_class'])}** from alias {md.code(gw['alias'])} (HTTP "
        f"{md.text(status)}, {md.text(plural(gw['retries'], 'retry'))}, request id "
        f"{md.code(gw['request_id'] or '-')})."
    )


def render_markdown(note: Mapping[str, Any], secrets: tuple[str, ...] = ()) -> str:
    """The note as Markdown (job summary, check run, stderr). Every value in it goes through
    :mod:`depthgate.core.markdown`: a note built from hostile paths, headers and messages
    renders as text."""
    md = Escape.of(secrets)
    gw = note["gateway"]
    config_sha = note["config_sha256"] or "-"
    hunks = note["hunks"]
    lines = [
        f"## depthgate: review {'incomplete' if note['status'] == 'failed_partial' else 'failed'}",
        "",
        _cause(note, md),
        "",
        f"**Next:** {md.text(note['next_action'])}",
        "",
        f"| hunks | reviewed | skipped | failed |\n|---|---|---|---|\n"
        f"| {hunks['total']} | {hunks['reviewed']} | {hunks['skipped']} | {len(hunks['failed'])} |",
    ]
    if hunks["failed"]:
        lines += ["", "Not reviewed:", ""]
        lines += [
            f"- {md.code(f['path'])} {md.code(f['header'])} ({md.text(f['error_class'])})"
            for f in hunks["failed"][:50]
        ]
        if len(hunks["failed"]) > 50:
            lines.append(f"- … and {len(hunks['failed']) - 50} more (see the JSON note)")
    unsent = [f for f in note["failures"] if not f.get("sent", True)]
    if unsent:
        lines += ["", "Not sent (held back after the failure above):", ""]
        lines += [f"- `{f['task']}` ({f['alias']}, {f['error_class']})" for f in unsent[:50]]
        if len(unsent) > 50:
            lines.append(f"- … and {len(unsent) - 50} more (see the JSON note)")
    if note["remaining_uncertainty"]:
        lines += ["", "Remaining uncertainty:", ""]
        lines += [f"- {md.text(u)}" for u in note["remaining_uncertainty"]]
    lines += [
        "",
        f"<sub>command {md.code(note['command'])} · config sha256 {md.code(config_sha[:12])} · "
        f"gateway {md.text(gw['base_url'])} ({md.text(gw['profile'])}) · fallback used: "
        f"{md.text(note['fallback_used'] or 'none')} · depthgate "
        f"{md.text(note['versions']['depthgate'])}</sub>",
    ]
    return "\n".join(lines) + "\n"


def annotation(note: Mapping[str, Any]) -> str:
    """A one-line ``::error::`` workflow command (newlines escaped as GitHub requires)."""
    gw, gh = note["gateway"], note.get("github")
    cause = f"GitHub {gh['error_class']}" if gh else f"{gw['error_class']} from {gw['alias']}"
    text = Escape().plain(f"depthgate: {cause}: {note['next_action']}")
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::error title=depthgate review {note['status']}::{text}"
