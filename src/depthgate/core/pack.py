"""Classified hunks -> gateway tasks: one call each, per alias, under that alias's token budget.

* fast  -- hunks of one file, batched;
* logic -- hunks of one file, with the file's other hunks as context;
* deep  -- a bundle of deep hunks (across files) with the other changed files' hunks as context.

A hunk larger than its alias's input budget is split on line boundaries into parts that each fit.
Per-PR limits (``limits.max_hunks``, ``limits.max_tokens_per_alias``) drop work in a fixed order
-- fast first, then logic, deep last -- and every dropped hunk is listed with its reason. Task ids
and order are deterministic.

Token estimate
--------------
No tokenizer is downloaded or shipped. A hunk is shown to the model as its header and one line
per diff line, ``R12 +text`` (side, number, sign, text: see :func:`render_hunk`), and its size is
estimated as ``ceil(UTF-8 bytes of header and texts / 2.5) + 4 tokens a line``.
``bench/token_estimate.py`` measures this against exact o200k_base and cl100k_base counts, on
this repository's own history plus Go, Java, TypeScript, JSON, Japanese and Russian samples
(the input grows with the history; figures in the README). At 234 hunks the estimate was 1.39x
the exact count at the median (1.04x at the 5th percentile, 1.68x at the 95th) and below it for
1.3% of hunks, by a few percent; ``limits.prompt_overhead_tokens`` (the instructions around the
hunks) is the margin that absorbs that. Prose tokenizes better than code, so English
text is over-estimated more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from depthgate.core.classify import Classification, HunkDecision
from depthgate.core.diff import Hunk, Line, LineKind
from depthgate.core.routes import Limits, RoutesConfig, Tier

BYTES_PER_TOKEN = 2.5
TOKENS_PER_LINE = 4  # the "R12 +" prefix and the newline
_PRIORITY = {Tier.DEEP: 0, Tier.LOGIC: 1, Tier.FAST: 2}


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "replace")) / BYTES_PER_TOKEN)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def _line_tokens(line: Line) -> float:
    return (_utf8_len(line.text) + 1) / BYTES_PER_TOKEN + TOKENS_PER_LINE


def hunk_tokens(hunk: Hunk) -> int:
    text = "\n".join(line.text for line in hunk.lines)
    size = _utf8_len(hunk.path) + 1 + _utf8_len(hunk.header) + 1 + _utf8_len(text)
    return math.ceil(size / BYTES_PER_TOKEN) + TOKENS_PER_LINE * len(hunk.lines)


def render_line(line: Line) -> str:
    """One diff line as the model sees it: ``R12 +added``, ``R13  context``, ``L7 -deleted``.

    The side and number are exactly what a finding must quote back to be placed.
    """
    if line.kind is LineKind.DELETED:
        return f"L{line.old_no} -{line.text}"
    sign = "+" if line.kind is LineKind.ADDED else " "
    return f"R{line.new_no} {sign}{line.text}"


def render_hunk(hunk: Hunk) -> str:
    return "\n".join([f"{hunk.path} {hunk.header}", *map(render_line, hunk.lines)]) + "\n"


@dataclass(frozen=True, slots=True)
class TaskHunk:
    decision: HunkDecision  # the whole hunk as classified
    hunk: Hunk  # what this task reviews: the hunk, or one part of it
    part: tuple[int, int] | None  # (n, of) when the hunk was split
    tokens: int

    @property
    def tier(self) -> Tier:
        assert self.decision.tier is not None
        return self.decision.tier


@dataclass(frozen=True)
class Task:
    id: str
    alias: str
    tier: Tier
    hunks: tuple[TaskHunk, ...]
    context: tuple[Hunk, ...]
    context_truncated: bool
    est_input_tokens: int


@dataclass(frozen=True, slots=True)
class Dropped:
    path: str
    header: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Packing:
    tasks: tuple[Task, ...]
    dropped: tuple[Dropped, ...]


def pack(classification: Classification, config: RoutesConfig) -> Packing:
    limits = config.limits
    dropped: list[Dropped] = []
    reviewable = [d for d in classification.decisions if d.tier is not None]
    ranked = sorted(range(len(reviewable)), key=lambda i: (_PRIORITY[_tier(reviewable[i])], i))
    keep = set(ranked[: limits.max_hunks])
    for i in ranked[limits.max_hunks :]:
        d = reviewable[i]
        dropped.append(
            Dropped(
                d.hunk.path,
                d.hunk.header,
                "limit.max_hunks",
                f"over the PR's limit of {limits.max_hunks} reviewed hunks ({_tier(d).value} tier)",
            )
        )
    kept = [d for i, d in enumerate(reviewable) if i in keep]

    # Context candidates: hunks of files that are not skipped (whole-file skips add only noise).
    context_pool = _Pool.of([d.hunk for d in classification.decisions if d.skip is None])

    drafts: list[_Draft] = []
    for tier in (Tier.DEEP, Tier.LOGIC, Tier.FAST):
        alias = config.tiers.alias(tier)
        route = config.routes[alias]
        budget = route.max_input_tokens - limits.prompt_overhead_tokens
        context_budget = _context_budget(tier, limits, budget)
        items: list[TaskHunk] = []
        for d in (d for d in kept if d.tier is tier):
            parts, problem = _split(d, budget - context_budget)
            if problem is not None:
                dropped.append(Dropped(d.hunk.path, d.hunk.header, "limit.line_too_long", problem))
            items.extend(parts)
        for batch in _batches(items, budget - context_budget, per_file=tier is not Tier.DEEP):
            context, truncated = _context(tier, batch, context_pool, context_budget)
            drafts.append(_Draft(alias, tier, batch, context, truncated))

    tasks = _apply_alias_budgets(drafts, config, dropped)
    return Packing(tasks=tasks, dropped=tuple(dropped))


def pack_escalated(
    decisions: Sequence[HunkDecision],
    classification: Classification,
    config: RoutesConfig,
    planned: Sequence[Task],
) -> Packing:
    """Deep tasks for hunks a cheaper alias escalated at review time: packed like planned deep
    work (bundled across files, the other changed files as context), ids ``escalated-NNN``,
    within what the deep alias's PR budget has left after the planned tasks."""
    limits = config.limits
    alias = config.tiers.alias(Tier.DEEP)
    budget = config.routes[alias].max_input_tokens - limits.prompt_overhead_tokens
    context_budget = _context_budget(Tier.DEEP, limits, budget)
    pool = _Pool.of([d.hunk for d in classification.decisions if d.skip is None])
    dropped: list[Dropped] = []
    items: list[TaskHunk] = []
    for d in decisions:
        parts, problem = _split(d, budget - context_budget)
        if problem is not None:
            dropped.append(Dropped(d.hunk.path, d.hunk.header, "limit.line_too_long", problem))
        items.extend(parts)
    drafts = []
    for batch in _batches(items, budget - context_budget, per_file=False):
        context, truncated = _context(Tier.DEEP, batch, pool, context_budget)
        drafts.append(_Draft(alias, Tier.DEEP, batch, context, truncated))
    spent: dict[str, int] = {}
    for task in planned:
        spent[task.alias] = spent.get(task.alias, 0) + task.est_input_tokens
    tasks = _apply_alias_budgets(drafts, config, dropped, spent=spent, prefix="escalated")
    return Packing(tasks=tasks, dropped=tuple(dropped))


def _tier(d: HunkDecision) -> Tier:
    assert d.tier is not None
    return d.tier


@dataclass
class _Draft:
    alias: str
    tier: Tier
    hunks: list[TaskHunk]
    context: list[Hunk]
    context_truncated: bool

    def tokens(self, overhead: int) -> int:
        return (
            overhead + sum(h.tokens for h in self.hunks) + sum(hunk_tokens(h) for h in self.context)
        )


def _context_budget(tier: Tier, limits: Limits, budget: int) -> int:
    wanted = {
        Tier.DEEP: limits.deep_context_tokens,
        Tier.LOGIC: limits.logic_context_tokens,
        Tier.FAST: 0,
    }[tier]
    return min(wanted, budget // 2)


def _split(d: HunkDecision, budget: int) -> tuple[list[TaskHunk], str | None]:
    tokens = hunk_tokens(d.hunk)
    if tokens <= budget:
        return [TaskHunk(d, d.hunk, None, tokens)], None
    groups: list[list[Line]] = [[]]
    size = 0.0
    # what hunk_tokens() will charge each part, less the rounding up it adds at the end
    limit = budget - (_utf8_len(d.hunk.path) + _utf8_len(d.hunk.header) + 2) / BYTES_PER_TOKEN - 1
    for line in d.hunk.lines:
        cost = _line_tokens(line)
        if cost > limit:
            return [], (
                f"a line of {_utf8_len(line.text)} bytes does not fit the alias's input budget "
                f"of {budget} tokens"
            )
        if size + cost > limit and groups[-1]:
            groups.append([])
            size = 0.0
        groups[-1].append(line)
        size += cost
    parts = []
    old_cursor, new_cursor = d.hunk.old_start, d.hunk.new_start
    for n, lines in enumerate(groups, 1):
        old_n = sum(1 for ln in lines if ln.old_no is not None)
        new_n = sum(1 for ln in lines if ln.new_no is not None)
        part = Hunk(
            path=d.hunk.path,
            index=d.hunk.index,
            old_start=next((ln.old_no for ln in lines if ln.old_no is not None), old_cursor),
            old_lines=old_n,
            new_start=next((ln.new_no for ln in lines if ln.new_no is not None), new_cursor),
            new_lines=new_n,
            section=d.hunk.section,
            lines=tuple(lines),
            old_missing_newline=d.hunk.old_missing_newline and n == len(groups),
            new_missing_newline=d.hunk.new_missing_newline and n == len(groups),
        )
        old_cursor += old_n
        new_cursor += new_n
        parts.append(TaskHunk(d, part, (n, len(groups)), hunk_tokens(part)))
    return parts, None


def _batches(items: Sequence[TaskHunk], budget: int, *, per_file: bool) -> Iterable[list[TaskHunk]]:
    batch: list[TaskHunk] = []
    size = 0
    for item in items:
        new_file = per_file and batch and batch[-1].hunk.path != item.hunk.path
        if batch and (new_file or size + item.tokens > budget):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.tokens
    if batch:
        yield batch


@dataclass(frozen=True)
class _Pool:
    """Hunks that may serve as context, in diff order, with their sizes precomputed."""

    hunks: tuple[Hunk, ...]
    by_path: dict[str, list[Hunk]]
    sizes: dict[int, int]

    @classmethod
    def of(cls, hunks: Sequence[Hunk]) -> _Pool:
        by_path: dict[str, list[Hunk]] = {}
        for h in hunks:
            by_path.setdefault(h.path, []).append(h)
        return cls(tuple(hunks), by_path, {id(h): hunk_tokens(h) for h in hunks})


def _context(
    tier: Tier, batch: list[TaskHunk], pool: _Pool, budget: int
) -> tuple[list[Hunk], bool]:
    """Same-file hunks first, then (deep only) the other files' hunks, until the budget is full."""
    if tier is Tier.FAST or budget <= 0:
        return [], False
    in_task = {id(th.decision.hunk) for th in batch}
    paths = dict.fromkeys(th.hunk.path for th in batch)
    candidates: list[Hunk] = [h for p in paths for h in pool.by_path.get(p, ())]
    chosen: list[Hunk] = []
    used = 0

    def take(h: Hunk) -> bool:
        nonlocal used
        if id(h) in in_task:
            return True
        size = pool.sizes[id(h)]
        if used + size > budget:
            return False
        chosen.append(h)
        used += size
        return True

    for h in candidates:
        if not take(h):
            return chosen, True
    if tier is Tier.DEEP:
        for h in pool.hunks:
            if h.path not in paths and not take(h):
                return chosen, True
    return chosen, False


def _apply_alias_budgets(
    drafts: list[_Draft],
    config: RoutesConfig,
    dropped: list[Dropped],
    *,
    spent: dict[str, int] | None = None,
    prefix: str | None = None,
) -> tuple[Task, ...]:
    limits = config.limits
    spent = dict(spent or {})
    accepted: list[_Draft] = []
    for draft in drafts:  # deep first, then logic, then fast: the cheap tiers give way first
        cap = limits.max_tokens_per_alias.get(draft.alias)
        used = spent.get(draft.alias, 0)
        cost = draft.tokens(limits.prompt_overhead_tokens)
        if cap is not None and used + cost > cap and draft.context:
            draft.context, draft.context_truncated = [], True
            cost = draft.tokens(limits.prompt_overhead_tokens)
        if cap is not None and used + cost > cap:
            for th in draft.hunks:
                dropped.append(
                    Dropped(
                        th.hunk.path,
                        th.hunk.header,
                        "limit.max_tokens_per_alias",
                        f"{draft.alias} would exceed its PR budget of {cap} input tokens",
                    )
                )
            continue
        spent[draft.alias] = used + cost
        accepted.append(draft)
    counters: dict[Tier, int] = {}
    tasks = []
    for draft in accepted:
        counters[draft.tier] = counters.get(draft.tier, 0) + 1
        tasks.append(
            Task(
                id=f"{prefix or draft.tier.value}-{counters[draft.tier]:03d}",
                alias=draft.alias,
                tier=draft.tier,
                hunks=tuple(draft.hunks),
                context=tuple(draft.context),
                context_truncated=draft.context_truncated,
                est_input_tokens=draft.tokens(limits.prompt_overhead_tokens),
            )
        )
    return tuple(tasks)
