"""Evaluate depth routing on real security fixes and ordinary releases (issues #6, #11 item 7).

    .venv/bin/python bench/routing_eval.py [--cases bench/routing_cases.yaml]
        [--cache-dir ~/.cache/depthgate-routing-eval] [--offline] [--split tune|held_out|held_out_2]
        [--mode source|diff|both] [--verbose] [--json] [--show-held-out]

**Tuning sessions run ``--split tune`` only and must never pass ``--show-held-out``.** The
held-out cases (``split: held_out`` and ``split: held_out_2`` in the corpus) were chosen before the
rules they score were written; their misses stay unread so that their figures still say how the
rules generalise. ``held_out`` was chosen before the syntax layer's rules (issue #11's first wave),
``held_out_2`` before the second wave's rule changes, from packages not otherwise in the corpus;
each is reported apart. Without ``--show-held-out`` the held-out parts are reported as aggregate
figures only, never case by case.

Builds its corpus at run time from the list in ``bench/routing_cases.yaml`` (bench/eval_corpus.py):
for every case it fetches the release before and the release after from its registry (PyPI
sdists by ``pip download``, npm tarballs by ``npm pack``; cached under ``--cache-dir``, outside the
repository), diffs the files named by the case the way ``git diff`` renders a PR, and runs the real
planner on it -- ``depthgate.core.plan.build_plan`` with the packaged default config, the plan
alone, no gateway -- in two modes:

* **diff-only**: the diff alone, as every surface without source;
* **with source**: the old and new texts of the diffed files handed to the planner as
  ``Sources(mode=SourceMode.REPO, ...)``. When the planner takes no ``sources=`` (detected from its
  signature), this mode is reported as unavailable and its targets as not met -- never faked.

Prints, per mode, for the tune and each held-out part apart and for Python (PyPI) and JavaScript /
TypeScript (npm) apart:

* **fixes caught**: fix cases with at least one fix hunk routed deep (a fix hunk is a hunk with an
  added or removed line matching one of the case's ``fix`` patterns);
* **fix hunks deep**: the same per fix hunk;
* **over-escalation**: reviewed hunks of the ordinary releases' diffs routed deep;
* **deep-alias token share**: the input tokens the plan's tasks send to the deep tier's alias over
  the tokens it would send there if every reviewable hunk were deep (the same planner, its
  classification forced deep), over fixes and ordinary diffs together. Both plans have the per-PR
  budgets (``limits.max_hunks``, ``limits.max_tokens_per_alias``) lifted, so neither is cut short
  by a budget; the tokens are the planner's own estimates (``est_input_tokens``).

Targets (issue #11): held-out with source >= 95% of fixes caught and over-escalation <= 20%, in
both ecosystems; deep-alias tokens <= 60%; diff-only no worse than today (:data:`TODAY`, the
figures of main before the syntax layer). With ``--split tune`` the same thresholds are checked on
the tune part. Exit status 0 when every target is met, 1 when one is missed, 2 when the corpus
cannot be built.

The scoring (:func:`evaluate`, :class:`Report`) is pure and takes diffs and texts as values:
``tests/test_routing_eval.py`` runs it offline on hand-written fixtures.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_corpus import DEFAULT_CACHE, release_pair
from depthgate.configfile import load_config
from depthgate.core.classify import Classification, Classifier
from depthgate.core.diff import LineKind, parse_diff
from depthgate.core.plan import Plan, build_plan
from depthgate.core.routes import LoadedConfig, Tier
from depthgate.core.source import FileSource, SourceMode, Sources

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = ROOT / "bench" / "routing_cases.yaml"
PACKAGED_CONFIG = ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"
SPLITS = ("tune", "held_out", "held_out_2")
HELD_OUT = ("held_out", "held_out_2")  # scored in aggregate only, never listed case by case
LANGS = {"pypi": "Python", "npm": "JS/TS"}
MODES = ("diff", "source")
TARGETS = {"caught": 0.95, "over_escalation": 0.20, "deep_token_share": 0.60}
# Diff-only figures of main ed12338 (before the syntax layer) on this corpus: "today". Diff-only
# mode must stay at least this good -- (split, ecosystem) -> (fixes caught, over-escalation), as
# the counts the run printed. Recompute them on that commit when the corpus changes.
TODAY: dict[tuple[str, str], tuple[float, float]] = {
    ("tune", "pypi"): (33 / 36, 135 / 965),
    ("tune", "npm"): (2 / 16, 9 / 61),
    ("held_out", "pypi"): (15 / 18, 45 / 538),
    ("held_out", "npm"): (11 / 29, 18 / 179),
    # measured on ed12338 after the rules of the recall work were frozen (aggregate only)
    ("held_out_2", "pypi"): (11 / 12, 51 / 294),
    ("held_out_2", "npm"): (4 / 11, 9 / 65),
}


# --------------------------------------------------------------------------------------------
# Scoring (pure)


@dataclass(frozen=True)
class EvalCase:
    name: str
    kind: str  # "fix" | "ordinary"
    diff: str
    fix: tuple[str, ...] = ()  # fix cases: a hunk with a changed line matching one is a fix hunk
    split: str = "tune"
    ecosystem: str = "pypi"
    # path -> (old text, new text); None where a side is absent. Empty: no source known.
    texts: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class HunkResult:
    case: str
    path: str
    header: str
    tier: str | None  # None: skipped
    reasons: tuple[str, ...]  # the deep reasons' rules


@dataclass
class CaseResult:
    case: EvalCase
    fix_hunks: list[HunkResult] = field(default_factory=list)
    other_hunks: list[HunkResult] = field(default_factory=list)  # ordinary, or not the fix
    deep_tokens: int = 0  # sent to the deep tier's alias (all tiers mapped to it)
    all_deep_tokens: int = 0

    @property
    def caught(self) -> bool:
        return any(h.tier == "deep" for h in self.fix_hunks)


@dataclass(frozen=True)
class Figures:
    """One slice of a report (a split, an ecosystem, or both)."""

    fixes: int
    caught: int
    fix_hunks: int
    fix_hunks_deep: int
    ordinary_hunks: int  # reviewed (not skipped) hunks of ordinary diffs
    ordinary_deep: int
    deep_tokens: int
    all_deep_tokens: int

    @property
    def caught_share(self) -> float:
        return self.caught / self.fixes if self.fixes else 1.0

    @property
    def hunk_recall(self) -> float:
        return self.fix_hunks_deep / self.fix_hunks if self.fix_hunks else 1.0

    @property
    def over_escalation(self) -> float:
        return self.ordinary_deep / self.ordinary_hunks if self.ordinary_hunks else 0.0

    @property
    def deep_token_share(self) -> float:
        return self.deep_tokens / self.all_deep_tokens if self.all_deep_tokens else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            **dataclasses.asdict(self),
            "caught_share": self.caught_share,
            "hunk_recall": self.hunk_recall,
            "over_escalation": self.over_escalation,
            "deep_token_share": self.deep_token_share,
        }


@dataclass
class Report:
    mode: str  # "diff" | "source"
    cases: list[CaseResult]

    def slice(self, split: str | None = None, ecosystem: str | None = None) -> Figures:
        cs = [
            c
            for c in self.cases
            if split in (None, c.case.split) and ecosystem in (None, c.case.ecosystem)
        ]
        fixes = [c for c in cs if c.case.kind == "fix"]
        fix_hunks = [h for c in fixes for h in c.fix_hunks]
        ordinary = [
            h for c in cs if c.case.kind == "ordinary" for h in c.other_hunks if h.tier is not None
        ]
        return Figures(
            fixes=len(fixes),
            caught=sum(c.caught for c in fixes),
            fix_hunks=len(fix_hunks),
            fix_hunks_deep=sum(h.tier == "deep" for h in fix_hunks),
            ordinary_hunks=len(ordinary),
            ordinary_deep=sum(h.tier == "deep" for h in ordinary),
            deep_tokens=sum(c.deep_tokens for c in cs),
            all_deep_tokens=sum(c.all_deep_tokens for c in cs),
        )

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(c.case.split == s for c in self.cases)]

    def ecosystems(self) -> list[str]:
        return [e for e in LANGS if any(c.case.ecosystem == e for c in self.cases)]

    def over_escalation_by_rule(self, split: str) -> dict[str, int]:
        """Over-escalated ordinary hunks of ``split`` by the family of the first deep reason."""
        out: dict[str, int] = {}
        for c in self.cases:
            if c.case.kind != "ordinary" or c.case.split != split:
                continue
            for h in c.other_hunks:
                if h.tier == "deep" and h.reasons:
                    parts = h.reasons[0].split(".")
                    family = ".".join(parts[:2]) if len(parts) > 2 else h.reasons[0]
                    out[family] = out.get(family, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def unbudgeted(loaded: LoadedConfig) -> LoadedConfig:
    """The config with the per-PR budgets lifted: a budget must not cut either side short."""
    cfg = loaded.config
    limits = cfg.limits.model_copy(update={"max_hunks": 10**9, "max_tokens_per_alias": {}})
    return dataclasses.replace(loaded, config=cfg.model_copy(update={"limits": limits}))


def all_deep(classification: Classification) -> Classification:
    decisions = tuple(
        d if d.tier is None else dataclasses.replace(d, tier=Tier.DEEP)
        for d in classification.decisions
    )
    return dataclasses.replace(classification, decisions=decisions)


class _AllDeep(Classifier):
    """The configured classifier with every reviewable hunk forced deep: "everything deep",
    planned by the same planner with the same context, for the token share."""

    def classify(self, *args: Any, **kwargs: Any) -> Classification:
        return all_deep(super().classify(*args, **kwargs))


def planner_takes_sources() -> bool:
    """Whether ``build_plan`` has a ``sources=`` keyword (the source port wired into the plan)."""
    return "sources" in inspect.signature(build_plan).parameters


def sources_of(case: EvalCase) -> Sources:
    files = {p: FileSource(p, old, new) for p, (old, new) in case.texts.items()}
    return Sources(mode=SourceMode.REPO, files=files)


def _plan(case: EvalCase, loaded: LoadedConfig, mode: str, classifier: Classifier | None) -> Plan:
    diff = parse_diff(case.diff)
    if mode == "source":
        extra: dict[str, Any] = {"sources": sources_of(case)}
        return build_plan(diff, loaded, classifier, **extra)
    return build_plan(diff, loaded, classifier)


def evaluate(cases: Iterable[EvalCase], loaded: LoadedConfig, *, mode: str = "diff") -> Report:
    """Plan every case's diff in ``mode`` and score it. Raises ValueError when a fix matches no
    hunk, or when ``mode`` is ``source`` and the planner takes no sources."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (use one of {MODES})")
    if mode == "source" and not planner_takes_sources():
        raise ValueError("source mode unavailable: build_plan takes no sources= keyword yet")
    loaded = unbudgeted(loaded)
    deep_alias = loaded.config.tiers.alias(Tier.DEEP)
    forced = _AllDeep(loaded.config.classify)
    results = []
    for case in cases:
        plan = _plan(case, loaded, mode, None)
        result = CaseResult(case)
        fix_re = re.compile("|".join(f"(?:{p})" for p in case.fix)) if case.fix else None
        for d in plan.classification.decisions:
            h = HunkResult(
                case.name,
                d.hunk.path,
                d.hunk.header,
                d.tier.value if d.tier else None,
                tuple(r.rule for r in d.reasons if r.tier == "deep"),
            )
            is_fix = fix_re is not None and any(
                ln.kind is not LineKind.CONTEXT and fix_re.search(ln.text) for ln in d.hunk.lines
            )
            (result.fix_hunks if is_fix else result.other_hunks).append(h)
        if case.kind == "fix" and not result.fix_hunks:
            raise ValueError(f"{case.name}: no hunk matches the fix patterns {list(case.fix)}")
        result.deep_tokens = sum(t.est_input_tokens for t in plan.tasks if t.alias == deep_alias)
        everything = _plan(case, loaded, mode, forced)
        result.all_deep_tokens = sum(
            t.est_input_tokens for t in everything.tasks if t.alias == deep_alias
        )
        results.append(result)
    return Report(mode, results)


def targets_missed(reports: Mapping[str, Report | None], split: str) -> list[str]:
    """What misses a target, in words; empty when every target is met. ``reports`` maps each
    mode to its report, ``None`` when the mode could not run."""
    missed: list[str] = []
    src = reports.get("source")
    if "source" not in reports:
        missed.append("with source: not run (--mode diff)")
    elif src is None:
        missed.append("with source: unavailable (the planner takes no sources)")
    else:
        for eco in src.ecosystems():
            f = src.slice(split, eco)
            if f.fixes and f.caught_share < TARGETS["caught"]:
                missed.append(
                    f"with source, {split} {LANGS[eco]}: fixes caught {f.caught_share:.1%}"
                )
            if f.over_escalation > TARGETS["over_escalation"]:
                missed.append(
                    f"with source, {split} {LANGS[eco]}: over-escalation {f.over_escalation:.1%}"
                )
        share = src.slice().deep_token_share
        if share > TARGETS["deep_token_share"]:
            missed.append(f"with source: deep-alias tokens {share:.1%}")
    diff = reports.get("diff")
    if diff is not None:
        for eco in diff.ecosystems():
            today = TODAY.get((split, eco))
            if today is None:
                continue
            f = diff.slice(split, eco)
            if f.caught_share < today[0] or f.over_escalation > today[1]:
                missed.append(
                    f"diff-only, {split} {LANGS[eco]}: worse than today (caught "
                    f"{f.caught_share:.1%} vs {today[0]:.1%}, over-escalation "
                    f"{f.over_escalation:.1%} vs {today[1]:.1%})"
                )
    return missed


def _pct(n: int, d: int) -> str:
    return f"{n / d:6.1%} ({n}/{d})" if d else "     - (0/0)"


def render_figures(report: Report) -> list[str]:
    label = "with source" if report.mode == "source" else "diff-only"
    out = [
        f"== {label} ==",
        f"{'split':<10} {'lang':<7} {'fixes caught':>16} {'fix hunks deep':>17} "
        f"{'ordinary deep':>18} {'deep tokens':>8}",
    ]
    for split in report.splits():
        for eco in [*report.ecosystems(), None]:
            f = report.slice(split, eco)
            out.append(
                f"{split:<10} {LANGS[eco] if eco else 'all':<7} {_pct(f.caught, f.fixes):>16} "
                f"{_pct(f.fix_hunks_deep, f.fix_hunks):>17} "
                f"{_pct(f.ordinary_deep, f.ordinary_hunks):>18} {f.deep_token_share:>8.1%}"
            )
    whole = report.slice()
    out.append(
        f"deep-alias tokens vs everything deep (all cases): {whole.deep_token_share:.1%} "
        f"({whole.deep_tokens:,} / {whole.all_deep_tokens:,} est. input tokens)"
    )
    return out


def render_cases(report: Report, *, verbose: bool, show_held_out: bool) -> list[str]:
    out = [f"{'case':<60} {'hunks':>5} {'deep':>5}  fix hunks deep"]
    hidden = 0
    for c in report.cases:
        if c.case.split in HELD_OUT and not show_held_out:
            hidden += 1
            continue
        hunks = c.fix_hunks + c.other_hunks
        deep = sum(h.tier == "deep" for h in hunks)
        fix = (
            f"{sum(h.tier == 'deep' for h in c.fix_hunks)}/{len(c.fix_hunks)}"
            if c.case.kind == "fix"
            else "-"
        )
        out.append(f"{c.case.name[:60]:<60} {len(hunks):>5} {deep:>5}  {fix}")
        if verbose:
            for h in c.fix_hunks:
                out.append(f"    fix  {h.tier or 'skip':<5} {h.path} {h.header[:50]}  {h.reasons}")
            for h in c.other_hunks:
                if h.tier == "deep":
                    out.append(f"    deep {h.path} {h.header[:50]}  {h.reasons}")
    if hidden:
        out.append(f"({hidden} held-out cases not listed: held-out results are aggregate only)")
    for split in report.splits():
        if split in HELD_OUT and not show_held_out:
            continue
        rules = report.over_escalation_by_rule(split)
        if rules:
            out.append(
                f"over-escalated {split} hunks by the rule that sent them deep: "
                + ", ".join(f"{k} {v}" for k, v in rules.items())
            )
    return out


def render(
    reports: Mapping[str, Report | None],
    *,
    verbose: bool = False,
    show_held_out: bool = False,
    cases: bool = True,
) -> str:
    out: list[str] = []
    listed = reports.get("source") or reports.get("diff")
    if cases and listed is not None:
        out += [f"-- cases ({'with source' if listed.mode == 'source' else 'diff-only'}) --"]
        out += render_cases(listed, verbose=verbose, show_held_out=show_held_out)
        out.append("")
    any_report = next((r for r in reports.values() if r is not None), None)
    if any_report is not None:
        fixes = [c for c in any_report.cases if c.case.kind == "fix"]
        out.append(
            f"corpus: {len(fixes)} fixes in {len({c.case.name.split()[0] for c in fixes})} "
            f"packages, {sum(c.case.kind == 'ordinary' for c in any_report.cases)} ordinary diffs"
        )
    for mode in MODES:
        if mode not in reports:
            continue
        r = reports[mode]
        if r is None:
            out.append(
                "== with source ==\nsource mode unavailable: build_plan takes no sources= "
                "keyword on this code; only diff-only was run"
            )
        else:
            out += render_figures(r)
    out.append(
        f"targets: held-out with source >= {TARGETS['caught']:.0%} fixes caught and <= "
        f"{TARGETS['over_escalation']:.0%} over-escalation per ecosystem; deep-alias tokens <= "
        f"{TARGETS['deep_token_share']:.0%}; diff-only no worse than today"
    )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Building the corpus (network, cache)


def case_splits(data: Mapping[str, Any]) -> dict[str, str]:
    """Each package's split: a package with a held-out fix is held out as a whole (in the split
    of its held-out fix), so that its ordinary releases are not read while tuning either."""
    out: dict[str, str] = {}
    for spec in data["fixes"]:
        key = f"{spec.get('ecosystem', 'pypi')}:{spec['package']}"
        split = spec.get("split", "tune")
        if split not in SPLITS:
            raise ValueError(f"{key}: unknown split {split!r} (use one of {SPLITS})")
        if split in HELD_OUT:
            out[key] = split
        else:
            out.setdefault(key, "tune")
    return out


def build_case(
    spec: Mapping[str, Any], kind: str, split: str, cache: Path, *, offline: bool
) -> EvalCase:
    pair = release_pair(spec, cache, offline=offline, exact_files=kind == "fix")
    label = spec.get("advisory", "ordinary")
    eco = str(spec.get("ecosystem", "pypi"))
    return EvalCase(
        name=f"{spec['package']} {spec['before']}..{spec['after']} {label}",
        kind=kind,
        diff=pair.diff,
        fix=tuple(spec.get("fix", ())),
        split=split,
        ecosystem=eco,
        texts={p: (pair.old[p], pair.new[p]) for p in pair.old},
    )


def load_corpus(path: Path, cache: Path, *, offline: bool, split: str | None) -> list[EvalCase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    packages = case_splits(data)
    cases = []
    for kind, key in (("fix", "fixes"), ("ordinary", "ordinary")):
        for spec in data[key]:
            pkg = f"{spec.get('ecosystem', 'pypi')}:{spec['package']}"
            s = spec.get("split", "tune") if kind == "fix" else packages.get(pkg, "tune")
            if split and s != split:
                continue
            cases.append(build_case(spec, kind, s, cache, offline=offline))
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--config", type=Path, default=PACKAGED_CONFIG)
    ap.add_argument("--offline", action="store_true", help="use only cached downloads")
    ap.add_argument("--split", choices=SPLITS, help="only these cases (tuning: --split tune)")
    ap.add_argument("--mode", choices=[*MODES, "both"], default="both")
    ap.add_argument("-v", "--verbose", action="store_true", help="every fix hunk, every deep hunk")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument(
        "--show-held-out",
        action="store_true",
        help="list held-out cases one by one (never in a tuning session)",
    )
    args = ap.parse_args(argv)
    modes = MODES if args.mode == "both" else (args.mode,)
    try:
        cases = load_corpus(args.cases, args.cache_dir, offline=args.offline, split=args.split)
        loaded = load_config(str(args.config))
        reports: dict[str, Report | None] = {}
        for mode in modes:
            if mode == "source" and not planner_takes_sources():
                reports[mode] = None
            else:
                reports[mode] = evaluate(cases, loaded, mode=mode)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"routing_eval: cannot build the corpus: {exc}", file=sys.stderr)
        return 2
    held = [s for s in HELD_OUT if any(c.split == s for c in cases)]
    # each held-out part is held to the targets apart; a miss shared by both is said once
    missed = list(
        dict.fromkeys(
            m for s in ([args.split] if args.split else held) for m in targets_missed(reports, s)
        )
    )
    if args.json:
        out: dict[str, Any] = {"targets": TARGETS, "met": not missed, "missed": missed}
        for mode, r in reports.items():
            out[mode] = (
                None
                if r is None
                else {
                    f"{s}/{e}": r.slice(s, None if e == "all" else e).as_dict()
                    for s in r.splits()
                    for e in [*r.ecosystems(), "all"]
                }
            )
        print(json.dumps(out, default=str))
    else:
        sys.stdout.write(render(reports, verbose=args.verbose, show_held_out=args.show_held_out))
        print("targets met" if not missed else "targets missed: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
