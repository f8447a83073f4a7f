"""Evaluate depth routing on real security fixes and ordinary releases (issue #6).

    .venv/bin/python bench/routing_eval.py [--cases bench/routing_cases.yaml]
        [--cache-dir ~/.cache/depthgate-routing-eval] [--offline] [--split tune|held_out]
        [--verbose] [--json]

Builds its corpus at run time from the list in ``bench/routing_cases.yaml``: for every case it
downloads the release before and the release after from the package index
(``pip download --no-deps --no-binary :all:``, cached under ``--cache-dir``, outside the
repository), diffs the files named by the case the way ``git diff`` renders a PR, and runs the
real planner on it -- ``depthgate.core.plan.build_plan`` with the packaged default config, the plan
alone, no gateway. Prints:

* **recall**: fix hunks (hunks with an added or removed line matching the case's ``fix``
  patterns) that the plan puts in the deep tier;
* **over-escalation**: hunks of the ordinary releases' diffs that the plan puts in the deep tier;
* **deep-alias token share**: the input tokens the plan's tasks send to the deep tier's alias,
  over the tokens it would send there if every reviewable hunk were deep -- over all diffs,
  fixes and ordinary ones together. Both plans are packed with the per-PR budgets
  (``limits.max_hunks``, ``limits.max_tokens_per_alias``) lifted, so that neither side is cut
  short by a budget; the tokens are the planner's own estimates (``est_input_tokens``).

Targets (issue #6): recall >= 90%, over-escalation <= 20%, deep-alias tokens <= 60%.
Exit status 0 when every target is met, 1 when one is missed, 2 when the corpus cannot be built.

The scoring (:func:`evaluate`) is pure and takes diffs as text: ``tests/test_routing_eval.py``
runs it offline on hand-written fixtures.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from depthgate.configfile import load_config
from depthgate.core.classify import Classification
from depthgate.core.diff import LineKind, parse_diff
from depthgate.core.pack import pack
from depthgate.core.plan import build_plan
from depthgate.core.routes import LoadedConfig, Tier

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = ROOT / "bench" / "routing_cases.yaml"
DEFAULT_CACHE = Path.home() / ".cache" / "depthgate-routing-eval"
PACKAGED_CONFIG = ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"
TARGETS = {"recall": 0.90, "over_escalation": 0.20, "deep_token_share": 0.60}


# --------------------------------------------------------------------------------------------
# Scoring (pure)


@dataclass(frozen=True)
class EvalCase:
    name: str
    kind: str  # "fix" | "ordinary"
    diff: str
    fix: tuple[str, ...] = ()  # fix cases: a hunk with a changed line matching one is a fix hunk
    split: str = "tune"


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
    deep_tier_tokens: int = 0  # of the deep tier's tasks alone
    all_deep_tokens: int = 0


@dataclass
class Report:
    cases: list[CaseResult]

    def _fix(self, split: str | None = None) -> list[HunkResult]:
        return [
            h
            for c in self.cases
            if c.case.kind == "fix" and split in (None, c.case.split)
            for h in c.fix_hunks
        ]

    def _ordinary(self) -> list[HunkResult]:
        return [
            h
            for c in self.cases
            if c.case.kind == "ordinary"
            for h in c.other_hunks
            if h.tier is not None
        ]

    def recall(self, split: str | None = None) -> float:
        hunks = self._fix(split)
        return sum(h.tier == "deep" for h in hunks) / len(hunks) if hunks else 1.0

    def cases_caught(self, split: str | None = None) -> tuple[int, int]:
        fixes = [c for c in self.cases if c.case.kind == "fix" and split in (None, c.case.split)]
        return sum(any(h.tier == "deep" for h in c.fix_hunks) for c in fixes), len(fixes)

    def over_escalation(self) -> float:
        hunks = self._ordinary()
        return sum(h.tier == "deep" for h in hunks) / len(hunks) if hunks else 0.0

    def deep_token_share(self) -> float:
        total = sum(c.all_deep_tokens for c in self.cases)
        return sum(c.deep_tokens for c in self.cases) / total if total else 0.0

    def deep_tier_token_share(self) -> float:
        total = sum(c.all_deep_tokens for c in self.cases)
        return sum(c.deep_tier_tokens for c in self.cases) / total if total else 0.0

    def over_escalation_by_rule(self) -> dict[str, int]:
        """Over-escalated ordinary hunks by the family of the rule that sent them deep (the
        first deep reason's ``deep.<family>[.<name>]``, security signals by role)."""
        out: dict[str, int] = {}
        for h in self._ordinary():
            if h.tier == "deep" and h.reasons:
                parts = h.reasons[0].split(".")
                family = ".".join(parts[:2]) if parts[1] in ("pattern", "path") else h.reasons[0]
                family = "deep.security" if parts[1] == "security" else family
                out[family] = out.get(family, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def over_escalation_by_security(self) -> float:
        """Ordinary hunks deep *only* by a security-domain signal (``deep.security.*``): what
        the signals cost on their own, apart from the path, pattern and structure rules."""
        hunks = self._ordinary()
        only = [
            h
            for h in hunks
            if h.tier == "deep" and all(r.startswith("deep.security.") for r in h.reasons)
        ]
        return len(only) / len(hunks) if hunks else 0.0

    def figures(self) -> dict[str, float]:
        return {
            "recall": self.recall(),
            "over_escalation": self.over_escalation(),
            "deep_token_share": self.deep_token_share(),
        }

    def met(self) -> bool:
        f = self.figures()
        return (
            f["recall"] >= TARGETS["recall"]
            and f["over_escalation"] <= TARGETS["over_escalation"]
            and f["deep_token_share"] <= TARGETS["deep_token_share"]
        )


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


def evaluate(cases: Iterable[EvalCase], loaded: LoadedConfig) -> Report:
    """Plan every case's diff and score it. Raises ValueError when a fix matches no hunk."""
    loaded = unbudgeted(loaded)
    deep_alias = loaded.config.tiers.alias(Tier.DEEP)
    results = []
    for case in cases:
        plan = build_plan(parse_diff(case.diff), loaded)
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
        result.deep_tier_tokens = sum(t.est_input_tokens for t in plan.tasks if t.tier is Tier.DEEP)
        everything = pack(all_deep(plan.classification), loaded.config)
        result.all_deep_tokens = sum(
            t.est_input_tokens for t in everything.tasks if t.alias == deep_alias
        )
        results.append(result)
    return Report(results)


def render(report: Report, *, verbose: bool = False) -> str:
    out = [f"{'case':<52} {'hunks':>5} {'deep':>5}  fix hunks deep"]
    for c in report.cases:
        hunks = c.fix_hunks + c.other_hunks
        deep = sum(h.tier == "deep" for h in hunks)
        fix = (
            f"{sum(h.tier == 'deep' for h in c.fix_hunks)}/{len(c.fix_hunks)}"
            if c.case.kind == "fix"
            else "-"
        )
        out.append(f"{c.case.name[:52]:<52} {len(hunks):>5} {deep:>5}  {fix}")
        if verbose:
            for h in c.fix_hunks:
                out.append(f"    fix  {h.tier or 'skip':<5} {h.path} {h.header[:50]}  {h.reasons}")
            for h in c.other_hunks:
                if h.tier == "deep":
                    out.append(f"    deep {h.path} {h.header[:50]}  {h.reasons}")
    f = report.figures()
    fixes = report._fix()
    ordinary = report._ordinary()
    caught, n_fix = report.cases_caught()
    out += [
        "",
        f"fix cases: {n_fix}, packages: "
        f"{len({c.case.name.split()[0] for c in report.cases if c.case.kind == 'fix'})}, "
        f"ordinary diffs: {sum(c.case.kind == 'ordinary' for c in report.cases)}",
        f"recall (fix hunks routed deep by the plan): {f['recall']:.1%} "
        f"({sum(h.tier == 'deep' for h in fixes)}/{len(fixes)} hunks; {caught}/{n_fix} cases "
        f"with a fix hunk deep)   target >= {TARGETS['recall']:.0%}",
    ]
    for split in ("tune", "held_out"):
        c_caught, c_n = report.cases_caught(split)
        if c_n:
            out.append(
                f"  {split:<8}: {report.recall(split):.1%} of {len(report._fix(split))} hunks, "
                f"{c_caught}/{c_n} cases"
            )
    out += [
        f"over-escalation (ordinary hunks routed deep): {f['over_escalation']:.1%} "
        f"({sum(h.tier == 'deep' for h in ordinary)}/{len(ordinary)} reviewed hunks)   "
        f"target <= {TARGETS['over_escalation']:.0%}",
        f"deep-alias tokens vs everything deep: {f['deep_token_share']:.1%} "
        f"({sum(c.deep_tokens for c in report.cases):,} / "
        f"{sum(c.all_deep_tokens for c in report.cases):,} est. input tokens, fixes + ordinary)"
        f"   target <= {TARGETS['deep_token_share']:.0%}",
        f"  of which deep-tier tasks: {report.deep_tier_token_share():.1%} "
        f"({sum(c.deep_tier_tokens for c in report.cases):,}; any rest is work of another tier "
        f"that the config's tiers also send to the deep alias)",
        f"  deep only by a security-domain signal: {report.over_escalation_by_security():.1%}",
        "over-escalated hunks by the rule that sent them deep: "
        + ", ".join(f"{k} {v}" for k, v in report.over_escalation_by_rule().items()),
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Building the corpus (network, cache)


def fetch(package: str, version: str, cache: Path, *, offline: bool) -> Path:
    """The sdist of ``package==version``, downloaded once into the cache."""
    where = cache / "sdists" / f"{package.lower()}-{version}"
    found = (
        [p for p in where.glob("*") if p.suffix in (".gz", ".zip", ".bz2")]
        if where.exists()
        else []
    )
    if found:
        return found[0]
    if offline:
        raise FileNotFoundError(f"{package}=={version} is not in the cache {where} (--offline)")
    where.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*cmd, f"{package}=={version}", "-d", str(where)], check=True, timeout=900)
    found = [p for p in where.glob("*") if p.suffix in (".gz", ".zip", ".bz2")]
    if not found:
        raise FileNotFoundError(f"pip download left no sdist in {where}")
    return found[0]


def read_sdist(path: Path) -> dict[str, bytes]:
    """The sdist's files by path, without the top-level ``name-version/`` directory."""
    out: dict[str, bytes] = {}
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if not name.endswith("/") and "/" in name:
                    out[name.split("/", 1)[1]] = z.read(name)
        return out
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile() and "/" in m.name:
                f = t.extractfile(m)
                if f is not None:
                    out[m.name.split("/", 1)[1]] = f.read()
    return out


def _git_diff(old: bytes | None, new: bytes | None, path: str) -> str:
    with tempfile.TemporaryDirectory() as td:
        a, b = Path(td, "old"), Path(td, "new")
        args = []
        for p, data in ((a, old), (b, new)):
            if data is None:
                args.append("/dev/null")
            else:
                p.write_bytes(data)
                args.append(str(p))
        run = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", "-U3", *args],
            capture_output=True,
            check=False,
        )
    text = run.stdout.decode("utf-8", "replace")
    if not text:
        return ""
    body = text[text.index("\n@@") + 1 :] if "\n@@" in text else ""
    head = f"diff --git a/{path} b/{path}\n"
    if old is None:
        head += f"new file mode 100644\n--- /dev/null\n+++ b/{path}\n"
    elif new is None:
        head += f"deleted file mode 100644\n--- a/{path}\n+++ /dev/null\n"
    else:
        head += f"--- a/{path}\n+++ b/{path}\n"
    return head + body


# Tests are left out of the ordinary diffs, as the fix cases name only the fixed source files.
TEST_GLOBS = ("*/tests/*", "*/test/*", "tests/*", "test/*", "*/test_*.py", "*_test.py")


def _selected(path: str, globs: Sequence[str]) -> bool:
    if any(fnmatch.fnmatch(path, g) for g in TEST_GLOBS):
        return False
    keep = False
    for g in globs:
        if g.startswith("!"):
            if fnmatch.fnmatch(path, g[1:]):
                keep = False
        elif fnmatch.fnmatch(path, g):
            keep = True
    return keep


def build_case(spec: dict[str, Any], kind: str, cache: Path, *, offline: bool) -> EvalCase:
    pkg, before, after = spec["package"], str(spec["before"]), str(spec["after"])
    old = read_sdist(fetch(pkg, before, cache, offline=offline))
    new = read_sdist(fetch(pkg, after, cache, offline=offline))
    if kind == "fix":
        paths = list(spec["files"])
        missing = [p for p in paths if p not in old and p not in new]
        if missing:
            raise FileNotFoundError(f"{pkg} {before}..{after}: no file {missing}")
    else:
        paths = sorted(
            p
            for p in set(old) | set(new)
            if old.get(p) != new.get(p) and _selected(p, spec["files"])
        )
    diff = "".join(_git_diff(old.get(p), new.get(p), p) for p in paths)
    label = spec.get("advisory", "ordinary")
    return EvalCase(
        name=f"{pkg} {before}..{after} {label}",
        kind=kind,
        diff=diff,
        fix=tuple(spec.get("fix", ())),
        split=spec.get("split", "tune"),
    )


def load_corpus(path: Path, cache: Path, *, offline: bool, split: str | None) -> list[EvalCase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for kind, key in (("fix", "fixes"), ("ordinary", "ordinary")):
        for spec in data[key]:
            if kind == "fix" and split and spec.get("split", "tune") != split:
                continue
            cases.append(build_case(spec, kind, cache, offline=offline))
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--config", type=Path, default=PACKAGED_CONFIG)
    ap.add_argument("--offline", action="store_true", help="use only cached downloads")
    ap.add_argument("--split", choices=["tune", "held_out"], help="only these fix cases")
    ap.add_argument("-v", "--verbose", action="store_true", help="every fix hunk, every deep hunk")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    try:
        cases = load_corpus(args.cases, args.cache_dir, offline=args.offline, split=args.split)
        report = evaluate(cases, load_config(str(args.config)))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"routing_eval: cannot build the corpus: {exc}", file=sys.stderr)
        return 2
    if args.json:
        figures = {**report.figures(), "deep_tier_token_share": report.deep_tier_token_share()}
        print(json.dumps({**figures, "targets": TARGETS, "met": report.met()}))
    else:
        sys.stdout.write(render(report, verbose=args.verbose))
    return 0 if report.met() else 1


if __name__ == "__main__":
    raise SystemExit(main())
