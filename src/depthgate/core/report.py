"""A review outcome as the JSON document of design §3 and as readable text. Pure.

Both carry PR, model and gateway text (paths, headers, escalation reasons, warnings): both are
redacted -- every credential shape and every exact value of ``secrets`` -- before they leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from depthgate.core.markdown import Escape
from depthgate.core.pipeline import ReviewOutcome
from depthgate.core.secretscan import redact_data
from depthgate.core.wording import plural


def outcome_to_dict(
    outcome: ReviewOutcome, handoff: Mapping[str, Any] | None, secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    doc = {
        "complete": outcome.complete,
        "comments": [
            {
                "path": c.path,
                "line": c.line,
                "side": c.side,
                "start_line": c.start_line,
                "start_side": c.start_side,
                "body": c.body,
                "severity": c.severity,
                "category": c.category,
                "tier": c.provenance.tier,
                "alias": c.provenance.alias,
                "model": c.provenance.model,
                "fingerprint": c.fingerprint,
            }
            for c in outcome.comments
        ],
        "summary_only": [
            {
                "finding": s.finding.model_dump(),
                "reason": s.reason,
                "tier": s.provenance.tier,
                "alias": s.provenance.alias,
            }
            for s in outcome.summary_only
        ],
        "usage": {
            alias: {
                "calls": u.calls,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "latency_ms": round(u.latency_ms, 1),
                "cost": round(u.cost, 6) if u.cost is not None else None,
            }
            for alias, u in outcome.usage.items()
        },
        "hunks": [
            {
                "path": h.path,
                "header": h.header,
                "state": h.state,
                "reason": h.reason,
                "tier": h.tier,
                "alias": h.alias,
                "escalated": h.escalated,
            }
            for h in outcome.hunks
        ],
        "escalations": escalations_to_list(outcome),
        "warnings": list(outcome.warnings),
        "fallback_used": outcome.fallback_used,
        "handoff": dict(handoff) if handoff is not None else None,
    }
    redacted: dict[str, Any] = redact_data(doc, secrets)
    return redacted


def escalations_to_list(outcome: ReviewOutcome) -> list[dict[str, Any]]:
    return [
        {
            "path": e.path,
            "header": e.header,
            "tier": e.tier,
            "from_alias": e.from_alias,
            "to_alias": e.to_alias,
            "reason": e.reason,
            "task": e.task,
            "state": e.state,
        }
        for e in outcome.escalations
    ]


def render_outcome_text(outcome: ReviewOutcome, secrets: tuple[str, ...] = ()) -> str:
    counts = outcome.counts()
    lines = [
        f"depthgate review: {plural(len(outcome.comments), 'inline comment')}, "
        f"{plural(len(outcome.summary_only), 'summary-only finding')}; hunks: {counts['reviewed']} "
        f"reviewed, {counts['skipped']} skipped, {counts['failed']} failed",
    ]
    by_path: dict[str, list[str]] = {}
    for c in outcome.comments:
        where = f"{c.start_line}-{c.line}" if c.start_line else str(c.line)
        first = c.body.split("\n", 1)[0]
        by_path.setdefault(c.path, []).append(
            f"  {c.side} {where:>7}  [{c.provenance.tier} via {c.provenance.alias}] {first}"
        )
    for path in sorted(by_path):
        lines += ["", path, *by_path[path]]
    if outcome.summary_only:
        lines += ["", "summary only:"]
        lines += [
            f"  {s.finding.path}:{s.finding.line} [{s.reason}] {s.finding.title}"
            for s in outcome.summary_only
        ]
    lines += ["", f"{'alias':<20} {'calls':>6} {'in tokens':>10} {'out tokens':>10} {'cost':>10}"]
    for alias, u in outcome.usage.items():
        cost = f"{u.cost:.4f}" if u.cost is not None else "-"
        lines.append(
            f"{alias:<20} {u.calls:>6} {u.input_tokens:>10} {u.output_tokens:>10} {cost:>10}"
        )
    if outcome.escalations:
        lines += ["", "escalated:"]
        lines += [
            f"  {e.path} {e.header} {e.from_alias} -> {e.to_alias} [{e.state}] {e.reason}"
            for e in outcome.escalations
        ]
    lines += [f"warning: {w}" for w in outcome.warnings]
    return Escape.of(secrets).plain("\n".join(lines)) + "\n"
