"""The review pipeline: plan -> gateway calls -> findings -> placement -> comments (design §1).

``review(plan, gateway, options)`` reads as the pipeline itself. The gateway is a port (the HTTP
client in production, fakes in tests); posting is not done here -- the outcome is what a
publisher posts, or what ``--dry-run`` prints.

Order of calls: every alias is probed at once, each with its first task, before anything else
is sent to it; once an alias's probe answered, its other tasks start (the gateway client holds
them to the route's concurrency). An ``auth`` or ``unknown_alias`` answer stops the run:
nothing is retried or sent to a fallback, and no task that has not started yet is sent (probes
already in flight on other aliases finish). A probe that failed with any other class (its
retries spent) holds back its alias's other tasks: they are not sent and fail with the probe's
class, so an alias that is down costs one probe's attempts, not every task's. Any other failure
fails only its own task: a partial review keeps what completed, and every hunk ends in exactly
one state -- ``reviewed``, ``skipped(reason)`` or ``failed(error class)``.

``options.progress``, when set, is told about every task as it is sent and as it ends (alias,
tier, hunks, status, latency): the surfaces print it while the review runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from depthgate.core.classify import HunkDecision
from depthgate.core.diff import Anchor, Side
from depthgate.core.findings import (
    AnswerError,
    ParsedAnswer,
    PullRequestText,
    build_messages,
    parse_answer,
    repair_messages,
    response_schema,
)
from depthgate.core.markdown import Escape, fence_for
from depthgate.core.models import (
    NO_FALLBACK,
    SEVERITY_ORDER,
    Comment,
    ErrorClass,
    Finding,
    Provenance,
    SummaryOnly,
)
from depthgate.core.pack import Task, pack_escalated
from depthgate.core.placement import Placed, PlacementMode, place
from depthgate.core.plan import Plan
from depthgate.core.ports import ChatReply, Gateway, GatewayError, TaskProgress
from depthgate.core.routes import Tier
from depthgate.core.sanitize import SanitizePolicy, sanitize

FINGERPRINT_MARK = "depthgate:fp="
_MODEL_CHARS = re.compile(r"[^\w.:/@+-]")


@dataclass(frozen=True)
class ReviewOptions:
    placement: PlacementMode = PlacementMode.DIFF_CONTEXT
    sanitize: SanitizePolicy = field(default_factory=SanitizePolicy)
    max_comments: int = 30
    comment_max_bytes: int = 16_000
    max_findings_per_task: int = 50  # the prompt asks for 10; more is a runaway answer
    pr: PullRequestText | None = None
    progress: Callable[[TaskProgress], None] | None = None  # told as each task starts and ends


@dataclass
class Usage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost: float | None = None


@dataclass(frozen=True)
class HunkOutcome:
    path: str
    header: str
    state: str  # reviewed | skipped | failed
    reason: str | None  # the skip reason, or the error class of a failure
    tier: str | None
    alias: str | None
    escalated: bool = False  # a cheaper alias flagged it and the deep alias reviewed it too


@dataclass(frozen=True)
class EscalationRecord:
    """A hunk a cheaper alias flagged for the deep alias, and what came of it."""

    path: str
    header: str
    tier: str  # as planned
    from_alias: str
    to_alias: str
    reason: str  # the model's words, shown as data
    task: str | None  # the escalated task that reviewed it; None when not sent
    state: str  # reviewed | failed(<error class>) | over_cap | over_budget


@dataclass(frozen=True)
class TaskFailure:
    task_id: str
    alias: str
    error_class: ErrorClass
    message: str
    http_status: int | None = None
    request_id: str | None = None
    retries: int = 0
    retry_after_s: float | None = None
    response_model: str | None = None
    sent: bool = True  # False: never sent, because the run had stopped


@dataclass
class ReviewOutcome:
    plan: Plan
    comments: list[Comment] = field(default_factory=list)
    summary_only: list[SummaryOnly] = field(default_factory=list)
    usage: dict[str, Usage] = field(default_factory=dict)
    hunks: list[HunkOutcome] = field(default_factory=list)
    failures: list[TaskFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fallback_used: str | None = None
    response_models: dict[str, str] = field(default_factory=dict)
    escalations: list[EscalationRecord] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        out = {"total": len(self.hunks), "reviewed": 0, "skipped": 0, "failed": 0}
        for h in self.hunks:
            out[h.state] += 1
        return out


@dataclass
class _TaskResult:
    task: Task
    reply: ChatReply | None = None
    answer: ParsedAnswer | None = None
    failure: TaskFailure | None = None
    calls: int = 0
    drafts: list[tuple[Comment, Finding]] = field(default_factory=list)
    summary: list[SummaryOnly] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Stop:
    """Set once an auth or unknown-alias failure makes every further call pointless; ``held``
    names the aliases whose probe failed, whose other tasks are therefore not sent."""

    def __init__(self) -> None:
        self.cause: TaskFailure | None = None
        self.held: dict[str, TaskFailure] = {}

    def current(self) -> TaskFailure | None:
        """Read anew after every await: another task may have stopped the run meanwhile."""
        return self.cause


async def review(plan: Plan, gateway: Gateway, options: ReviewOptions) -> ReviewOutcome:
    outcome = ReviewOutcome(plan=plan)
    for alias in plan.config.config.routes:
        outcome.usage[alias] = Usage()
    stop = _Stop()
    by_alias: dict[str, list[Task]] = {}
    for task in plan.tasks:
        by_alias.setdefault(task.alias, []).append(task)

    async def alias_run(tasks: list[Task]) -> list[_TaskResult]:
        # the probe answers before the alias's other tasks are sent: an alias that is down
        # or unknown costs one call, not one per task
        first, *others = tasks
        probe = await _run_task(first, plan, gateway, options, stop)
        if probe.failure is not None and probe.failure.sent:
            stop.held[probe.task.alias] = probe.failure
        rest = await asyncio.gather(*(_run_task(t, plan, gateway, options, stop) for t in others))
        return [probe, *rest]

    batches = await asyncio.gather(*(alias_run(tasks) for tasks in by_alias.values()))
    position = {t.id: i for i, t in enumerate(plan.tasks)}
    results = sorted((r for b in batches for r in b), key=lambda r: position[r.task.id])
    escalated, outcome.escalations = await _escalate(results, plan, gateway, options, stop)
    results += escalated

    drafts: list[tuple[Comment, Finding]] = []
    for result in results:
        _collect(result, outcome, drafts)
    _finish_comments(drafts, outcome, options)
    outcome.hunks = _hunk_states(plan, results, outcome.escalations)
    return outcome


async def _escalate(
    results: list[_TaskResult],
    plan: Plan,
    gateway: Gateway,
    options: ReviewOptions,
    stop: _Stop,
) -> tuple[list[_TaskResult], list[EscalationRecord]]:
    """Hunks a cheaper alias flagged go to the deep alias now, in this run: each hunk once, in
    task order, at most ``escalation.max_hunks``, within the deep alias's PR budget."""
    cfg = plan.config.config
    deep = cfg.tiers.alias(Tier.DEEP)
    anchors = plan.diff.anchors
    decisions = {id(d.hunk): d for d in plan.classification.decisions}
    wanted: dict[int, tuple[HunkDecision, str, str]] = {}
    for r in results:
        if r.answer is None or not _may_escalate(r.task, plan):
            continue
        own = {id(th.decision.hunk) for th in r.task.hunks}
        for req in r.answer.escalations:
            hunk = anchors.get(Anchor(req.path, Side.RIGHT, req.line)) or anchors.get(
                Anchor(req.path, Side.LEFT, req.line)
            )
            if hunk is not None and id(hunk) in own and id(hunk) not in wanted:
                wanted[id(hunk)] = (decisions[id(hunk)], r.task.alias, req.reason)
    if not wanted:
        return [], []
    flagged = list(wanted.values())
    cap = cfg.escalation.max_hunks
    packing = pack_escalated(
        [d for d, _, _ in flagged[:cap]],
        plan.classification,
        cfg,
        plan.tasks,
        index=plan.index,
        pr=plan.pr or options.pr,
        guidelines=plan.config.guidelines,
    )
    new = list(
        await asyncio.gather(*(_run_task(t, plan, gateway, options, stop) for t in packing.tasks))
    )
    task_of = {id(th.decision.hunk): r for r in new for th in r.task.hunks}
    records = []
    for n, (d, source, reason) in enumerate(flagged):
        result = task_of.get(id(d.hunk))
        if n >= cap:
            state = "over_cap"
        elif result is None:
            state = "over_budget"
        elif result.failure is not None:
            state = f"failed({result.failure.error_class.value})"
        else:
            state = "reviewed"
        records.append(
            EscalationRecord(
                path=d.hunk.path,
                header=d.hunk.header,
                tier=d.tier.value if d.tier else "",
                from_alias=source,
                to_alias=deep,
                reason=reason,
                task=result.task.id if result else None,
                state=state,
            )
        )
    return new, records


def _may_escalate(task: Task, plan: Plan) -> bool:
    cfg = plan.config.config
    return (
        cfg.escalation.enabled
        and cfg.escalation.max_hunks > 0
        and task.alias != cfg.tiers.alias(Tier.DEEP)
        and not task.id.startswith("escalated-")
    )


async def _run_task(
    task: Task, plan: Plan, gateway: Gateway, options: ReviewOptions, stop: _Stop
) -> _TaskResult:
    result = _TaskResult(task)
    cause = stop.current()
    if cause is not None:
        return _told(_not_sent(result, cause), options)
    probe = stop.held.get(task.alias)
    if probe is not None:
        return _told(_not_sent(result, probe, why=f"the probe of {task.alias} failed"), options)
    _tell(options, task, "sent")
    escalate = _may_escalate(task, plan)
    messages = build_messages(task, options.pr, escalate=escalate)
    schema = response_schema(escalate=escalate)
    try:
        reply = await gateway.chat(task.alias, messages, response_schema=schema)
        result.calls += reply.calls
        result.reply = reply
        try:
            result.answer = parse_answer(reply.content)
        except AnswerError as exc:  # one repair turn, then failed(bad_response)
            cause = stop.current()
            if cause is not None:  # another task hit auth/unknown_alias while this one waited
                return _not_sent(result, cause)
            repair = repair_messages(messages, reply.content, str(exc))
            second = await gateway.chat(task.alias, repair, response_schema=schema)
            result.calls += second.calls
            result.reply = _merge(reply, second)
            try:
                result.answer = parse_answer(second.content)
            except AnswerError as exc2:
                result.failure = TaskFailure(
                    task.id,
                    task.alias,
                    ErrorClass.BAD_RESPONSE,
                    f"{task.alias}: the answer was not usable after one repair: {exc2}",
                    response_model=second.response_model,
                )
    except GatewayError as exc:
        result.calls += exc.retries + 1
        result.failure = TaskFailure(
            task.id,
            task.alias,
            exc.error_class,
            exc.message,
            http_status=exc.http_status,
            request_id=exc.request_id,
            retries=exc.retries,
            retry_after_s=exc.retry_after_s,
            response_model=exc.response_model,
        )
        if exc.error_class in NO_FALLBACK and stop.cause is None:
            stop.cause = result.failure
    if result.failure is None:
        _interpret(result, plan, options)
    return _told(result, options)


def _tell(
    options: ReviewOptions,
    task: Task,
    status: str,
    *,
    error_class: str | None = None,
    latency_ms: float | None = None,
    calls: int = 0,
    findings: int | None = None,
    served_by: str | None = None,
) -> None:
    if options.progress is not None:
        options.progress(
            TaskProgress(
                task_id=task.id,
                alias=task.alias,
                tier=task.tier.value,
                hunks=len(task.hunks),
                status=status,
                error_class=error_class,
                latency_ms=latency_ms,
                calls=calls,
                findings=findings,
                served_by=served_by,
            )
        )


def _told(result: _TaskResult, options: ReviewOptions) -> _TaskResult:
    """Report how the task ended: reviewed, failed (with its class) or not sent."""
    failure, reply = result.failure, result.reply
    if failure is None:
        assert result.answer is not None
        status, error = "reviewed", None
        findings: int | None = len(result.drafts) + len(result.summary)
    else:
        status = "failed" if failure.sent else "not_sent"
        error, findings = failure.error_class.value, None
    _tell(
        options,
        result.task,
        status,
        error_class=error,
        latency_ms=reply.latency_ms if reply is not None else None,
        calls=result.calls,
        findings=findings,
        served_by=reply.served_by if reply is not None else None,
    )
    return result


def _not_sent(result: _TaskResult, cause: TaskFailure, *, why: str = "") -> _TaskResult:
    why = why or f"the run stopped after {cause.alias} answered"
    result.failure = TaskFailure(
        result.task.id,
        result.task.alias,
        cause.error_class,
        f"not sent: {why} {cause.error_class.value} ({cause.task_id})",
        sent=False,
    )
    return result


def _merge(first: ChatReply, second: ChatReply) -> ChatReply:
    """The repaired answer, with the usage of both calls."""
    return replace(
        second,
        input_tokens=first.input_tokens + second.input_tokens,
        output_tokens=first.output_tokens + second.output_tokens,
        latency_ms=first.latency_ms + second.latency_ms,
        retries=first.retries + second.retries,
        gateway_fallback=first.gateway_fallback or second.gateway_fallback,
        warnings=first.warnings + second.warnings,
        calls=first.calls + second.calls,
    )


def _collect(
    result: _TaskResult, outcome: ReviewOutcome, drafts: list[tuple[Comment, Finding]]
) -> None:
    """Fold one task's result into the outcome: cheap bookkeeping, done in task order."""
    task = result.task
    usage = outcome.usage.setdefault(task.alias, Usage())
    usage.calls += result.calls
    reply = result.reply
    if reply is not None:
        usage.input_tokens += reply.input_tokens
        usage.output_tokens += reply.output_tokens
        usage.latency_ms += reply.latency_ms
        price = outcome.plan.config.config.routes[task.alias].price
        if price is not None:
            cost = (
                reply.input_tokens * price.input_per_mtok
                + reply.output_tokens * price.output_per_mtok
            ) / 1e6
            usage.cost = (usage.cost or 0.0) + cost
        outcome.warnings.extend(w for w in reply.warnings if w not in outcome.warnings)
        if reply.served_by != task.alias:
            outcome.fallback_used = reply.served_by
        if reply.response_model:
            outcome.response_models[reply.served_by] = reply.response_model
    if result.failure is not None:
        outcome.failures.append(result.failure)
        return
    outcome.warnings.extend(result.notes)
    outcome.summary_only.extend(result.summary)
    drafts.extend(result.drafts)


def _interpret(result: _TaskResult, plan: Plan, options: ReviewOptions) -> None:
    """Findings -> placed, sanitized comments or summary entries. Runs inside the task, right
    after its answer arrives, so this CPU work overlaps the other tasks' waiting."""
    task, reply, answer = result.task, result.reply, result.answer
    assert answer is not None
    assert reply is not None
    provenance = Provenance(task.tier.value, reply.served_by, _clean_model(reply.response_model))
    if answer.ignored_fields:
        names = ", ".join(sorted(answer.ignored_fields))
        result.notes.append(f"{task.id}: ignored unknown fields in the answer: {names}")
    for raw, why in answer.invalid[: options.max_findings_per_task]:
        finding = _salvage(raw)
        if finding is not None:
            result.summary.append(_summary(finding, why, provenance, options))
        else:
            result.notes.append(f"{task.id}: dropped an unusable finding ({why})")
    own = {id(th.decision.hunk) for th in task.hunks}
    anchors = plan.diff.anchors
    findings = answer.findings
    if len(findings) > options.max_findings_per_task:
        result.notes.append(
            f"{task.id}: the answer had {len(findings)} findings; only the first "
            f"{options.max_findings_per_task} were used"
        )
        findings = findings[: options.max_findings_per_task]
    for finding in findings:
        placed = place(finding, plan.diff, options.placement)
        if isinstance(placed, str):
            result.summary.append(_summary(finding, placed, provenance, options))
            continue
        side = Side(placed.side)
        hunk = anchors.get(Anchor(placed.path, side, placed.line))
        if hunk is None or id(hunk) not in own:
            result.summary.append(_summary(finding, "outside_task_hunks", provenance, options))
            continue
        line_text = hunk.line_text(side, placed.line) or ""
        comment = _comment(finding, placed, provenance, options, line_text)
        result.drafts.append((comment, finding))


def _summary(
    finding: Finding, reason: str, prov: Provenance, options: ReviewOptions
) -> SummaryOnly:
    """A finding for the summary, its texts sanitized like any comment's (they are posted too)."""
    policy = options.sanitize
    clean = finding.model_copy(
        update={
            # the path is shown only as code (core.markdown); the title is cut before it is
            # sanitized, as a cut sanitized text could end inside a code span
            "path": Escape.of(policy.secrets).plain(finding.path)[:1000],
            "title": sanitize(" ".join(finding.title.split())[:200], policy),
            "body": sanitize(finding.body, policy),
            "suggestion": sanitize(finding.suggestion, policy) if finding.suggestion else None,
        }
    )
    return SummaryOnly(clean, reason, prov)


def _clean_model(model: str | None) -> str | None:
    return _MODEL_CHARS.sub("", model)[:100] if model else None


def _salvage(raw: object) -> Finding | None:
    """A finding rejected for its anchor (``"line": "12"``) still has a message worth listing."""
    if not isinstance(raw, dict):
        return None
    title, body = raw.get("title"), raw.get("body")
    if not isinstance(title, str) or not isinstance(body, str) or not title or not body:
        return None
    severity = raw.get("severity") if raw.get("severity") in SEVERITY_ORDER else "info"
    category = raw.get("category")
    try:
        return Finding.model_validate(
            {
                "path": str(raw.get("path") or "(unknown)")[:1000],
                "line": 1,
                "severity": severity,
                "category": category if isinstance(category, str) else "bug",
                "title": title[:200],
                "body": body[:8000],
            },
            strict=False,
        )
    except ValueError:
        return None


def fingerprint(finding: Finding, line_text: str) -> str:
    """Stable across pushes while the commented line's text and the finding stay the same."""
    norm_title = " ".join(finding.title.lower().split())
    key = "\x1f".join((finding.path, finding.category, norm_title, line_text.strip()))
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:20]


def _comment(
    finding: Finding, placed: Placed, prov: Provenance, options: ReviewOptions, line_text: str
) -> Comment:
    """The posted body: the model's words, sanitized as a whole, then depthgate's own footer
    (provenance, from config and a character-filtered model name) and the hidden fingerprint."""
    fp = fingerprint(finding, line_text)
    parts = [f"**{finding.severity}** · {finding.category} · {' '.join(finding.title.split())}"]
    parts += ["", finding.body]
    if finding.suggestion is not None and placed.side == "RIGHT":
        # Fenced before sanitizing: code inside a fence is kept verbatim (secrets aside), so
        # `a < b` stays `a < b` in the suggestion GitHub applies.
        fence = fence_for(finding.suggestion)
        parts += ["", f"{fence}suggestion", finding.suggestion.rstrip("\n"), fence]
    # the model name is the gateway's word: a "www." or "@" in it would be a link or a mention,
    # and a secret in it is redacted like the model's own words
    escape = Escape.of(options.sanitize.secrets)
    footer = "\n\n<sub>depthgate · " + " · ".join(
        escape.text(_MODEL_CHARS.sub("", x)[:100])
        for x in (prov.tier, prov.alias, prov.model or "")
        if x
    )
    # the tier in the hidden state: a reply in this comment's thread goes to the same depth
    footer += f"</sub>\n<!-- {FINGERPRINT_MARK}{fp} tier={prov.tier} -->"
    policy = options.sanitize
    budget = min(policy.max_bytes, options.comment_max_bytes) - len(footer.encode())
    text = sanitize("\n".join(parts), replace(policy, max_bytes=budget))
    text += footer
    return Comment(
        path=placed.path,
        line=placed.line,
        side=placed.side,
        start_line=placed.start_line,
        start_side=placed.start_side,
        body=text,
        severity=finding.severity,
        category=finding.category,
        provenance=prov,
        fingerprint=fp,
        title=sanitize(" ".join(finding.title.split())[:200], policy),
    )


def _finish_comments(
    drafts: list[tuple[Comment, Finding]], outcome: ReviewOutcome, options: ReviewOptions
) -> None:
    """One comment per fingerprint; the most severe first up to ``max_comments``; the rest are
    listed in the summary."""
    seen: set[str] = set()
    unique: list[tuple[Comment, Finding]] = []
    for comment, finding in drafts:
        if comment.fingerprint not in seen:
            seen.add(comment.fingerprint)
            unique.append((comment, finding))
    unique.sort(key=lambda cf: (-SEVERITY_ORDER[cf[0].severity], cf[0].path, cf[0].line))
    for comment, finding in unique[options.max_comments :]:
        outcome.summary_only.append(
            _summary(finding, "over_max_comments", comment.provenance, options)
        )
    kept = [c for c, _ in unique[: options.max_comments]]
    outcome.comments = sorted(kept, key=lambda c: (c.path, c.line))


def _hunk_states(
    plan: Plan, results: Iterable[_TaskResult], escalations: Iterable[EscalationRecord] = ()
) -> list[HunkOutcome]:
    sent_up = {(e.path, e.header) for e in escalations if e.task is not None}
    failed: dict[int, ErrorClass] = {}
    done: dict[int, int] = {}
    parts: dict[int, int] = {}
    alias_of: dict[int, str] = {}
    for r in results:
        for th in r.task.hunks:
            key = id(th.decision.hunk)
            parts[key] = parts.get(key, 0) + 1
            alias_of[key] = r.task.alias
            if r.failure is None:
                done[key] = done.get(key, 0) + 1
            else:
                failed.setdefault(key, r.failure.error_class)
    skipped = {(s["path"], s["header"]): s["reason"] for s in _plan_skips(plan)}
    out = []
    for d in plan.classification.decisions:
        h = d.hunk
        key = id(h)
        tier = d.tier.value if d.tier else None
        if key in failed:
            out.append(
                HunkOutcome(h.path, h.header, "failed", failed[key].value, tier, alias_of[key])
            )
        elif key in parts and done.get(key) == parts[key]:
            up = (h.path, h.header) in sent_up
            out.append(HunkOutcome(h.path, h.header, "reviewed", None, tier, alias_of[key], up))
        else:
            reason = d.skip or skipped.get((h.path, h.header)) or "limit"
            out.append(HunkOutcome(h.path, h.header, "skipped", reason, tier, None))
    return out


def _plan_skips(plan: Plan) -> list[dict[str, str]]:
    return [{"path": d.path, "header": d.header, "reason": d.reason} for d in plan.packing.dropped]
