"""The routing plan: parse -> classify -> pack, and its JSON and text renderings (design §3).

``depthgate plan`` prints it; the review pipeline executes it. Pure: values in, values out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from depthgate import __version__
from depthgate.core.classify import SKIP, Classification, Classifier, HunkDecision, Reason
from depthgate.core.context import ContextBlock
from depthgate.core.diff import Diff, FileDiff, Hunk, file_to_dict
from depthgate.core.languages import detect
from depthgate.core.pack import Packing, Task, pack
from depthgate.core.prompting import PullRequestText
from depthgate.core.routes import LoadedConfig, Tier
from depthgate.core.source import DIFF_ONLY, SourceMode, Sources
from depthgate.core.syntax import CodeIndex
from depthgate.core.wording import plural


@dataclass(frozen=True)
class Plan:
    diff: Diff
    classification: Classification
    packing: Packing
    config: LoadedConfig
    # the PR's code, parsed once: the classifier's and the packer's (design §9)
    index: CodeIndex = field(default_factory=CodeIndex, compare=False)
    pr: PullRequestText | None = None

    @property
    def sources(self) -> Sources:
        return self.index.sources

    @property
    def tasks(self) -> tuple[Task, ...]:
        return self.packing.tasks


UNCHANGED = "unchanged"
EMPTY_DIFF = (
    "notice: the diff is empty -- there is nothing to review. A `git diff` of a branch against "
    "itself prints nothing: compare against the base, e.g. `git diff origin/main...HEAD`."
)


def build_plan(
    diff: Diff,
    loaded: LoadedConfig,
    classifier: Classifier | None = None,
    *,
    reviewed: Collection[str] = (),
    reviewed_at: str = "",
    sources: Sources = DIFF_ONLY,
    pr: PullRequestText | None = None,
) -> Plan:
    """``reviewed``: :func:`hunk_key` of hunks an earlier run already reviewed. They are
    classified as usual (and still give the other hunks their context), then skipped as
    ``unchanged`` instead of being sent again. ``sources``: the changed files' content, as a
    surface found it (diff only without). ``pr``: the PR's title and description, which logic
    and deep tasks carry and the budgets count."""
    classifier = classifier or Classifier(loaded.config.classify)
    index = CodeIndex(sources)
    classification = classifier.classify(diff, index=index)
    if reviewed:
        classification = _skip_reviewed(classification, frozenset(reviewed), reviewed_at)
    packing = pack(classification, loaded.config, index=index, pr=pr, guidelines=loaded.guidelines)
    return Plan(diff, classification, packing, loaded, index, pr)


def hunk_key(hunk: Hunk) -> str:
    """Identifies a hunk by its path and content, not by its position: a hunk that a later push
    only moved (lines added above it) keeps its key, a hunk whose text changed gets a new one."""
    h = hashlib.sha256(hunk.path.encode("utf-8", "replace"))
    for line in hunk.lines:
        h.update(b"\n" + line.kind.value.encode() + line.text.encode("utf-8", "replace"))
    return h.hexdigest()[:12]


def _skip_reviewed(
    classification: Classification, reviewed: frozenset[str], reviewed_at: str
) -> Classification:
    detail = f"reviewed at {reviewed_at[:12]}, unchanged since" if reviewed_at else "unchanged"
    reason = Reason(f"skip.{UNCHANGED}", SKIP, detail)
    decisions = tuple(
        replace(d, tier=None, skip=UNCHANGED, reasons=(reason, *d.reasons))
        if d.tier is not None and hunk_key(d.hunk) in reviewed
        else d
        for d in classification.decisions
    )
    return replace(classification, decisions=decisions)


# --------------------------------------------------------------------------------------------
# JSON


def _reason(r: Reason) -> dict[str, str]:
    return {"rule": r.rule, "tier": r.tier, "detail": r.detail}


def _hunk_ref(h: Hunk) -> dict[str, Any]:
    return {
        "path": h.path,
        "header": h.header,
        "old_start": h.old_start,
        "old_lines": h.old_lines,
        "new_start": h.new_start,
        "new_lines": h.new_lines,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    decisions = {id(d.hunk): d for d in plan.classification.decisions}
    task_of: dict[int, list[str]] = {}
    for task in plan.tasks:
        for th in task.hunks:
            task_of.setdefault(id(th.decision.hunk), []).append(task.id)
    dropped = {(d.path, d.header): d for d in plan.packing.dropped}
    file_skips = {s.path: s for s in plan.classification.skipped_files}

    files = []
    for f in plan.diff.files:
        skip = file_skips.get(f.path)
        hunks = []
        for h in f.hunks:
            d = decisions[id(h)]
            drop = dropped.get((h.path, h.header))
            right, left = h.anchor_lines()
            hunks.append(
                {
                    **_hunk_ref(h),
                    "tier": d.tier.value if d.tier else None,
                    "skip": d.skip or (drop.reason if drop and id(h) not in task_of else None),
                    "reasons": [_reason(r) for r in d.reasons],
                    "decided_by": d.decided_by.rule if d.decided_by else None,
                    "enclosing": [s.to_dict() for s in d.enclosing],
                    "tasks": task_of.get(id(h), []),
                    "anchors": {"RIGHT": right, "LEFT": left},
                }
            )
        files.append(
            {
                **file_to_dict(f),
                "language": detect(f.path).value,
                "skipped": {"reason": skip.reason, "detail": skip.detail} if skip else None,
                "hunks": hunks,
            }
        )

    tasks = [
        {
            "id": t.id,
            "alias": t.alias,
            "tier": t.tier.value,
            "hunks": [
                {
                    **_hunk_ref(th.hunk),
                    "part": list(th.part) if th.part else None,
                    "est_tokens": th.tokens,
                    "reasons": [_reason(r) for r in th.decision.reasons],
                    "language": th.site.language.value if th.site else None,
                    "enclosing": th.site.definition if th.site else None,
                }
                for th in t.hunks
            ],
            "context": [{"path": h.path, "header": h.header} for h in t.context],
            "context_code": [_block(b) for b in t.blocks],
            "context_cut": list(t.cut),
            "context_truncated": t.context_truncated,
            "fixed_tokens": t.fixed_tokens,
            "guidance": list(t.guidance),
            "est_input_tokens": t.est_input_tokens,
        }
        for t in plan.tasks
    ]
    return {
        "version": 1,
        "depthgate": __version__,
        "config": {"source": plan.config.source, "sha256": plan.config.sha256},
        "warnings": list(plan.diff.warnings),
        "sources": _sources(plan),
        "files": files,
        "tasks": tasks,
        "skipped": _skipped(plan),
        "totals": _totals(plan),
        # hunks a cheaper alias may still send to the deep alias at review time
        "escalation": plan.config.config.escalation.model_dump(),
    }


def _block(b: ContextBlock) -> dict[str, Any]:
    return {
        "path": b.path,
        "side": b.side,
        "kind": b.kind,
        "label": b.label,
        "lines": [b.lines[0][0], b.lines[-1][0]] if b.lines else None,
        "line_count": len(b.lines),
        "est_tokens": b.tokens,
        "cut": b.cut,
    }


def _sources(plan: Plan) -> dict[str, Any]:
    src = plan.sources
    return {
        "mode": src.mode.value,
        "files": len([f for f in src.files.values() if not f.missing]),
        "diff_only": [
            {"path": f.path, "reason": f.missing} for f in src.files.values() if f.missing
        ],
        "notes": list(src.notes),
    }


def source_line(plan: Plan) -> str:
    """``source: repo (3 files; diff only: a.py -- file over 1 MB)``, as the text plan shows it."""
    data = _sources(plan)
    mode = "diff only" if data["mode"] == SourceMode.DIFF.value else data["mode"]
    parts = [f"{data['files']} files"] if data["mode"] != SourceMode.DIFF.value else []
    if data["diff_only"]:
        shown = ", ".join(f"{d['path']} -- {d['reason']}" for d in data["diff_only"][:10])
        more = len(data["diff_only"]) - 10
        parts.append(f"diff only: {shown}" + (f" and {more} more" if more > 0 else ""))
    return f"source: {mode}" + (f" ({'; '.join(parts)})" if parts else "")


def _skipped(plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"path": s.path, "header": None, "reason": s.reason, "detail": s.detail}
        for s in plan.classification.skipped_files
    ]
    skipped_files = plan.classification.skipped_paths
    out += [
        {
            "path": d.hunk.path,
            "header": d.hunk.header,
            "reason": d.skip,
            "detail": d.reasons[0].detail,
        }
        for d in plan.classification.decisions
        if d.skip and d.hunk.path not in skipped_files
    ]
    out += [
        {"path": d.path, "header": d.header, "reason": d.reason, "detail": d.detail}
        for d in plan.packing.dropped
    ]
    return out


def _totals(plan: Plan) -> dict[str, Any]:
    by_tier = {t.value: 0 for t in (Tier.FAST, Tier.LOGIC, Tier.DEEP)}
    skipped = 0
    for d in plan.classification.decisions:
        if d.tier is None:
            skipped += 1
        else:
            by_tier[d.tier.value] += 1
    planned = {id(th.decision.hunk) for t in plan.tasks for th in t.hunks}
    by_alias: dict[str, dict[str, int]] = {}
    for alias in plan.config.config.routes:
        by_alias[alias] = {"tasks": 0, "hunks": 0, "est_input_tokens": 0, "max_output_tokens": 0}
    for t in plan.tasks:
        row = by_alias[t.alias]
        row["tasks"] += 1
        row["hunks"] += len({id(th.decision.hunk) for th in t.hunks})
        row["est_input_tokens"] += t.est_input_tokens
        row["max_output_tokens"] += plan.config.config.routes[t.alias].max_output_tokens
    hunks = sum(len(f.hunks) for f in plan.diff.files)
    return {
        "files": len(plan.diff.files),
        "files_skipped": len(plan.classification.skipped_files),
        "hunks": hunks,
        "hunks_planned": len(planned),
        "hunks_skipped": skipped,
        "hunks_dropped": len({(d.path, d.header) for d in plan.packing.dropped}),
        "by_tier": {**by_tier, "skipped": skipped},
        "tasks": len(plan.tasks),
        "by_alias": by_alias,
        "est_input_tokens": sum(t.est_input_tokens for t in plan.tasks),
    }


# --------------------------------------------------------------------------------------------
# Text


def render_text(plan: Plan, *, verbose: bool = False) -> str:
    totals = _totals(plan)
    cfg = plan.config
    out = [
        f"depthgate plan: {plural(totals['files'], 'file')}, {plural(totals['hunks'], 'hunk')}, "
        f"{plural(totals['tasks'], 'gateway call')}  (config {cfg.source}, sha256 "
        f"{cfg.sha256[:12]})",
    ]
    if not plan.diff.files:
        out += [EMPTY_DIFF]
    out += ["", f"{'tier':<8} {'hunks':>6}  alias"]
    for tier in (Tier.DEEP, Tier.LOGIC, Tier.FAST):
        alias = cfg.config.tiers.alias(tier)
        out.append(f"{tier.value:<8} {totals['by_tier'][tier.value]:>6}  {alias}")
    out.append(f"{'skipped':<8} {totals['by_tier']['skipped']:>6}")
    out += ["", source_line(plan)]
    out += ["", f"{'alias':<20} {'tasks':>6} {'hunks':>6} {'est. input tokens':>18} {'budget':>10}"]
    for alias, row in totals["by_alias"].items():
        cap = cfg.config.limits.max_tokens_per_alias.get(alias)
        out.append(
            f"{alias:<20} {row['tasks']:>6} {row['hunks']:>6} {row['est_input_tokens']:>18,} "
            f"{(f'{cap:,}' if cap else '-'):>10}"
        )
    skipped = _skipped(plan)
    if skipped:
        out += ["", "skipped:"]
        for s in skipped:
            where = f"{s['path']} {s['header']}" if s["header"] else s["path"]
            out.append(f"  {where}  [{s['reason']}] {s['detail']}")
    for w in plan.diff.warnings:
        out.append(f"warning: {w}")
    if verbose:
        out += ["", "hunks:"]
        decisions: dict[int, HunkDecision] = {id(d.hunk): d for d in plan.classification.decisions}
        for f in plan.diff.files:
            out.extend(_verbose_file(f, decisions))
        out += ["", "tasks:"]
        for t in plan.tasks:
            out.extend(_task_lines(t))
    return "\n".join(out) + "\n"


def _task_lines(t: Task) -> list[str]:
    """A task: what it reviews, then the hunks it only shows the model as context (the same
    file's other hunks for logic, other files' for deep) -- never confused with each other."""
    reviews = ", ".join(
        f"{th.hunk.path} {th.hunk.header}"
        + (f" (part {th.part[0]}/{th.part[1]})" if th.part else "")
        for th in t.hunks
    )
    lines = [
        f"  {t.id} -> {t.alias} ({t.tier.value}): ~{t.est_input_tokens:,} tokens",
        f"      reviews {plural(len(t.hunks), 'hunk')}: {reviews}",
    ]
    if t.context:
        paths = ", ".join(dict.fromkeys(h.path for h in t.context))
        cut = ", truncated to the context budget" if t.context_truncated else ""
        lines.append(f"      context: {plural(len(t.context), 'other hunk')} ({paths}{cut})")
    lines.extend(_code_context(t))
    return lines


def _code_context(t: Task) -> list[str]:
    """Where each hunk sits, what every task sends anyway, and the code shown around it."""
    out = [f"      {th.hunk.path}: {th.site.describe()}" for th in t.hunks if th.site is not None]
    pr = ", PR title and description" if t.pr_text else ""
    team = ", team guidance" if t.guidance_text else ""
    out.append(f"      fixed: ~{t.fixed_tokens:,} tokens (instructions, schema{pr}{team})")
    if t.guidance:
        out.append(f"      guidance: {', '.join(t.guidance)}")
    for b in t.blocks:
        side = ", old side" if b.side == "old" else ""
        out.append(
            f"      code {b.kind}: {b.path}: {b.label} -- {plural(len(b.lines), 'line')}{side}, "
            f"~{b.tokens:,} tokens"
        )
    out.extend(f"      cut: {c}" for c in t.cut)
    return out


def _verbose_file(f: FileDiff, decisions: dict[int, HunkDecision]) -> list[str]:
    lines = []
    for h in f.hunks:
        d = decisions[id(h)]
        label = d.tier.value if d.tier else f"skip:{d.skip}"
        decided = f"  (decided by {d.decided_by.rule})" if d.decided_by else ""
        lines.append(f"  {f.path} {h.header}  -> {label}{decided}")
        lines.extend(f"      in {s.describe()}, {s.side} side" for s in d.enclosing)
        lines.extend(f"      {r.rule}: {r.detail}" for r in d.reasons)
    if not f.hunks:
        lines.append(f"  {f.path}  (no hunks)")
    return lines
