"""Classified hunks -> gateway tasks: one call each, per alias, under that alias's token budget.

* fast  -- hunks of one file, batched, each with its enclosing definition's signature;
* logic -- hunks of one file, with their enclosing definitions, imports, class header and
  constructor (:mod:`depthgate.core.context`), then the file's other hunks;
* deep  -- a bundle of deep hunks (across files) with logic's context, the PR's definitions they
  call or that call them, then the rest of the PR diff up to ``limits.deep_context_share`` of
  the deep alias's window.

Every token a task sends is counted against its alias's ``max_input_tokens``: instructions,
response schema, framing and PR text (:mod:`depthgate.core.prompting`), hunks and context.
A hunk larger than its alias's input budget is split on line boundaries into parts that each fit.
Per-PR limits (``limits.max_hunks``, ``limits.max_tokens_per_alias``) drop work in a fixed order
-- context first, then fast, then logic, deep last -- and every dropped hunk is listed with its
reason. Task ids and order are deterministic.

The hunks' text and token estimate are :mod:`depthgate.core.hunktext`'s. No tokenizer is
downloaded or shipped; ``bench/token_estimate.py`` measures the estimate against exact o200k_base
and cl100k_base counts, per hunk and per whole task (figures in the README);
``limits.prompt_overhead_tokens`` is the margin that absorbs the rare under-estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from depthgate.core.classify import Classification, HunkDecision
from depthgate.core.context import ContextBlock, ContextBuilder, Site
from depthgate.core.diff import Hunk
from depthgate.core.guidance import Guidance, guidance_section, instructions_for
from depthgate.core.hunktext import hunk_tokens, split_hunk
from depthgate.core.prompting import (
    PullRequestText,
    cap_text,
    estimate,
    fixed_tokens,
    shown_pr_text,
)
from depthgate.core.routes import RoutesConfig, Tier
from depthgate.core.syntax import CodeIndex

_PRIORITY = {Tier.DEEP: 0, Tier.LOGIC: 1, Tier.FAST: 2}
# The team's guidance takes at most this share of an alias's input window: the rest is the code's.
GUIDANCE_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class TaskHunk:
    decision: HunkDecision  # the whole hunk as classified
    hunk: Hunk  # what this task reviews: the hunk, or one part of it
    part: tuple[int, int] | None  # (n, of) when the hunk was split
    tokens: int
    site: Site | None = None  # language and enclosing definition, as the task names them

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
    context: tuple[Hunk, ...]  # other hunks of the PR, shown as context
    context_truncated: bool
    est_input_tokens: int
    blocks: tuple[ContextBlock, ...] = ()  # the code around the hunks (C lines)
    pr_text: str = ""  # the PR section exactly as sent ("" for fast)
    fixed_tokens: int = 0  # system prompt, schema, framing, PR text and team guidance
    cut: tuple[str, ...] = ()  # what was left out of the context, and why
    guidance_text: str = ""  # the team guidance exactly as sent ("" for fast)
    guidance: tuple[str, ...] = ()  # where it came from: review.instructions, AGENTS.md, ...


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


def pack(
    classification: Classification,
    config: RoutesConfig,
    *,
    index: CodeIndex | None = None,
    pr: PullRequestText | None = None,
    guidelines: Sequence[Guidance] = (),
) -> Packing:
    """``index``: the PR's parsed code (the plan's), for the context each tier carries; ``pr``:
    the PR's title and description, and ``guidelines`` the repository's guideline files with
    ``review.instructions`` (:mod:`depthgate.core.guidance`), counted where they are sent
    (logic and deep)."""
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
    builder = _builder(classification, config, index, kept)
    team = _Team(config, guidelines, [d.hunk.path for d in kept])

    drafts: list[_Draft] = []
    for tier in (Tier.DEEP, Tier.LOGIC, Tier.FAST):
        frame = _Frame.of(tier, config, pr, team)
        items: list[TaskHunk] = []
        for d in (d for d in kept if d.tier is tier):
            parts, problem = _split(d, frame.budget - frame.pool_budget, builder)
            if problem is not None:
                dropped.append(Dropped(d.hunk.path, d.hunk.header, "limit.line_too_long", problem))
            items.extend(parts)
        drafts.extend(_drafts(frame, items, builder, context_pool))

    tasks = _apply_alias_budgets(drafts, config, dropped)
    return Packing(tasks=tasks, dropped=tuple(dropped))


def pack_escalated(
    decisions: Sequence[HunkDecision],
    classification: Classification,
    config: RoutesConfig,
    planned: Sequence[Task],
    *,
    index: CodeIndex | None = None,
    pr: PullRequestText | None = None,
    guidelines: Sequence[Guidance] = (),
) -> Packing:
    """Deep tasks for hunks a cheaper alias escalated at review time: packed like planned deep
    work (bundled across files, deep context), ids ``escalated-NNN``, within what the deep
    alias's PR budget has left after the planned tasks."""
    team = _Team(config, guidelines, [d.hunk.path for d in decisions])
    frame = _Frame.of(Tier.DEEP, config, pr, team)
    pool = _Pool.of([d.hunk for d in classification.decisions if d.skip is None])
    builder = _builder(classification, config, index, decisions)
    dropped: list[Dropped] = []
    items: list[TaskHunk] = []
    for d in decisions:
        parts, problem = _split(d, frame.budget - frame.pool_budget, builder)
        if problem is not None:
            dropped.append(Dropped(d.hunk.path, d.hunk.header, "limit.line_too_long", problem))
        items.extend(parts)
    drafts = _drafts(frame, items, builder, pool)
    spent: dict[str, int] = {}
    for task in planned:
        spent[task.alias] = spent.get(task.alias, 0) + task.est_input_tokens
    tasks = _apply_alias_budgets(drafts, config, dropped, spent=spent, prefix="escalated")
    return Packing(tasks=tasks, dropped=tuple(dropped))


def _builder(
    classification: Classification,
    config: RoutesConfig,
    index: CodeIndex | None,
    reviewed: Sequence[HunkDecision],
) -> ContextBuilder:
    paths = [d.hunk.path for d in classification.decisions if d.skip is None]
    own = {d.hunk.path for d in reviewed}
    return ContextBuilder(
        index or CodeIndex(),
        paths,
        max_definition_lines=config.limits.max_definition_lines,
        own=own,
    )


class _Team:
    """The team's guidance for logic and deep tasks: each task shows what applies to its own
    paths; every task's budget holds room for the most any task of the PR could show."""

    def __init__(self, config: RoutesConfig, files: Sequence[Guidance], paths: Sequence[str]):
        self.review, self.files = config.review, tuple(files)
        self.reserve = estimate(guidance_section(self.review, self.files, dict.fromkeys(paths)))

    def text(self, tier: Tier, paths: Iterable[str], cap: int) -> tuple[str, tuple[str, ...]]:
        """The section a task of ``tier`` reviewing ``paths`` shows (cut to ``cap`` tokens),
        and its sources."""
        if tier is Tier.FAST:
            return "", ()
        wanted = list(dict.fromkeys(paths))
        sources = [g.source for g in instructions_for(self.review, wanted)]
        sources += [g.source for g in self.files]
        text = guidance_section(self.review, self.files, wanted)
        if text and estimate(text) > cap:
            note = "\n[... the team guidance was cut to fit this alias's input window]\n"
            text = cap_text(text, max(cap - estimate(note), 0))[0] + note
        return text, tuple(sources)


@dataclass(frozen=True)
class _Frame:
    """One tier's budget: what its alias takes in, less what every task of it sends anyway."""

    tier: Tier
    alias: str
    budget: int  # for hunks and context
    pool_budget: int  # of which: other hunks of the PR
    fixed: int  # system prompt, schema, framing, PR text (the guidance is each task's own)
    pr_text: str
    team: _Team
    guidance_cap: int  # tokens: at most GUIDANCE_SHARE of the alias's window

    @classmethod
    def of(
        cls, tier: Tier, config: RoutesConfig, pr: PullRequestText | None, team: _Team
    ) -> _Frame:
        limits = config.limits
        alias = config.tiers.alias(tier)
        window = config.routes[alias].max_input_tokens
        deep_alias = config.tiers.alias(Tier.DEEP)
        escalates = (
            config.escalation.enabled and config.escalation.max_hunks > 0 and alias != deep_alias
        )
        pr_text = shown_pr_text(pr, tier=tier.value, body_tokens=limits.pr_body_tokens)
        fixed = fixed_tokens(tier.value, escalate=escalates) + (estimate(pr_text) if pr_text else 0)
        cap = int(window * GUIDANCE_SHARE)
        reserve = min(team.reserve, cap) if tier is not Tier.FAST else 0
        budget = max(window - limits.prompt_overhead_tokens - fixed - reserve, 0)
        if tier is Tier.DEEP:
            wanted = int(window * limits.deep_context_share)
            if limits.deep_context_tokens is not None:
                wanted = min(wanted, limits.deep_context_tokens)
        elif tier is Tier.LOGIC:
            wanted = limits.logic_context_tokens
        else:
            wanted = 0
        return cls(tier, alias, budget, min(wanted, budget // 2), fixed, pr_text, team, cap)


def _drafts(
    frame: _Frame, items: Sequence[TaskHunk], builder: ContextBuilder, pool: _Pool
) -> list[_Draft]:
    out = []
    room = frame.budget - frame.pool_budget
    for batch, blocks, cut in _batches(frame, items, room, builder):
        used = sum(th.tokens for th in batch) + sum(b.tokens for b in blocks)
        pool_room = min(frame.pool_budget, frame.budget - used)
        context, truncated = _context(frame.tier, batch, pool, pool_room)
        draft = _Draft(frame.alias, frame.tier, batch, context, truncated, blocks, cut)
        paths = (th.hunk.path for th in batch)
        guidance, sources = frame.team.text(frame.tier, paths, frame.guidance_cap)
        draft.pr_text, draft.guidance_text, draft.guidance = frame.pr_text, guidance, sources
        draft.fixed = frame.fixed + (estimate(guidance) if guidance else 0)
        out.append(draft)
    return out


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
    blocks: list[ContextBlock]
    cut: list[str]
    fixed: int = 0
    pr_text: str = ""
    guidance_text: str = ""
    guidance: tuple[str, ...] = ()

    def tokens(self, overhead: int) -> int:
        return (
            overhead
            + self.fixed
            + sum(h.tokens for h in self.hunks)
            + sum(b.tokens for b in self.blocks)
            + sum(hunk_tokens(h) for h in self.context)
        )


def _split(
    d: HunkDecision, budget: int, builder: ContextBuilder
) -> tuple[list[TaskHunk], str | None]:
    site = builder.site(d.hunk)
    tokens = hunk_tokens(d.hunk) + _site_tokens(site)
    if tokens <= budget:
        return [TaskHunk(d, d.hunk, None, tokens, site)], None
    parts, problem = split_hunk(d.hunk, budget, reserved=_site_tokens(site))
    if problem is not None:
        return [], problem
    return [
        TaskHunk(d, part, (n, len(parts)), hunk_tokens(part) + _site_tokens(site), site)
        for n, part in enumerate(parts, 1)
    ], None


def _site_tokens(site: Site) -> int:
    return estimate(site.describe()) + 2


def _batches(
    frame: _Frame, items: Sequence[TaskHunk], budget: int, builder: ContextBuilder
) -> Iterable[tuple[list[TaskHunk], list[ContextBlock], list[str]]]:
    """Hunks into tasks, each with the code around it: a hunk's context counts once per task
    (two hunks of one function share it). Fast and logic tasks hold one file; deep bundles
    across files. When a hunk's context does not fit beside it, the least important blocks go
    first (callers, callees, imports, ... the definition last), and the task says so."""
    per_file = frame.tier is not Tier.DEEP
    batch: list[TaskHunk] = []
    blocks: dict[tuple[str, str, str], ContextBlock] = {}
    cut: list[str] = []
    size = 0
    for item in items:
        wanted = builder.blocks(frame.tier.value, item.decision.hunk)
        new = [b for b in wanted if b.key not in blocks]
        cost = item.tokens + sum(b.tokens for b in new)
        new_file = per_file and batch and batch[-1].hunk.path != item.hunk.path
        if batch and (new_file or size + cost > budget):
            yield batch, list(blocks.values()), cut
            batch, blocks, cut, size = [], {}, [], 0
            new = list(wanted)
            cost = item.tokens + sum(b.tokens for b in new)
        while new and size + cost > budget:
            gone = new.pop()
            cost -= gone.tokens
            cut.append(f"{gone.path}: {gone.label} left out (over the task's input budget)")
        for b in new:
            blocks[b.key] = b
            if b.cut:
                cut.append(f"{b.path}: {b.cut}")
        batch.append(item)
        size += cost
    if batch:
        yield batch, list(blocks.values()), cut


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
        if cap is not None and used + cost > cap and (draft.context or draft.blocks):
            # the PR budget gives way on context before it drops a hunk
            if draft.blocks:
                draft.cut.append("code context left out: the alias's PR budget is nearly spent")
            draft.context, draft.blocks, draft.context_truncated = [], [], True
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
                blocks=tuple(draft.blocks),
                pr_text=draft.pr_text,
                guidance_text=draft.guidance_text,
                guidance=draft.guidance,
                fixed_tokens=draft.fixed,
                cut=tuple(dict.fromkeys(draft.cut)),
            )
        )
    return tuple(tasks)
