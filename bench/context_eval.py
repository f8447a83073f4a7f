"""Evaluate the context each reviewing task carries (issue #11 item 7).

    .venv/bin/python bench/context_eval.py [--cases bench/context_cases.yaml]
        [--cache-dir ~/.cache/depthgate-routing-eval] [--offline] [--mode source|diff|both]
        [--verbose] [--json]

The corpus (``bench/context_cases.yaml``) lists real fixes from PyPI and npm releases whose cause
lies outside git's 3 lines of context, each annotated with the lines a reviewer needs to see to
judge the fix (``needs``: patterns, each matching exactly one line of the new -- or, with
``old:``, the old -- file, and none of the lines the fix hunk shows). The releases are fetched and
diffed as in bench/routing_eval.py (bench/eval_corpus.py). For every case the harness builds the
real plan (``build_plan``, packaged config; with the files as ``Sources`` where the planner takes
them) and the real prompt of each task (``core.findings.build_messages``, with ``escalate`` as the
pipeline sets it), and measures:

* **needed lines**: the share of cases whose task reviewing the fix hunk carries every needed line
  (the line's text in the prompt);
* **enclosing definition whole**: for every hunk of a logic or deep task, the innermost function or
  method around its changed lines, found here with tree-sitter independently of depthgate's own
  syntax layer; the definition is whole when all its non-blank lines appear, in order, in the
  prompt. Definitions over 150 lines are counted apart (the planner may cut them);
* **exact tokens per task per tier**: o200k tokens (``bpe_openai``) of the system and user
  messages, their chat framing and the response schema, against the task alias's
  ``max_input_tokens`` -- once with the PR title and a short body, once with a 60,000-character
  body (the release's own README, repeated) -- and against the planner's own estimate.

Targets (issue #11): needed lines in >= 95% of cases; the enclosing definition whole in 100% of
logic/deep hunks whose definition is <= 150 lines; no task over its alias's budget. Exit status 0
when every target is met, 1 when one is missed, 2 when the corpus cannot be built.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript
import yaml

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_corpus import DEFAULT_CACHE, fetch, read_archive, release_pair
from bench.routing_eval import planner_takes_sources
from depthgate.configfile import load_config
from depthgate.core.diff import Hunk, LineKind, parse_diff
from depthgate.core.findings import PullRequestText, build_messages, response_schema
from depthgate.core.pack import Task
from depthgate.core.plan import Plan, build_plan
from depthgate.core.routes import LoadedConfig, Tier
from depthgate.core.source import FileSource, SourceMode, Sources

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = ROOT / "bench" / "context_cases.yaml"
PACKAGED_CONFIG = ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"
MODES = ("diff", "source")
TARGETS = {"needed": 0.95, "whole": 1.0}
LONG_DEFINITION = 150  # lines: the planner's default cut (issue #11 item 4)
LONG_BODY_CHARS = 60_000
# OpenAI's chat framing: a few tokens per message and to prime the reply (their cookbook's count)
TOKENS_PER_MESSAGE, TOKENS_PER_REPLY = 3, 3


# --------------------------------------------------------------------------------------------
# Definitions, found with tree-sitter (independently of depthgate's syntax layer)

_DEFINITIONS = {
    "python": {"function_definition"},
    "js": {
        "function_declaration",
        "function_expression",
        "function",
        "generator_function_declaration",
        "generator_function",
        "method_definition",
        "arrow_function",
    },
}


@cache
def _parser(suffix: str) -> tree_sitter.Parser | None:
    if suffix in (".py", ".pyi"):
        lang = tree_sitter_python.language()
    elif suffix in (".js", ".mjs", ".cjs", ".jsx"):
        lang = tree_sitter_javascript.language()
    elif suffix in (".ts", ".mts", ".cts"):
        lang = tree_sitter_typescript.language_typescript()
    elif suffix == ".tsx":
        lang = tree_sitter_typescript.language_tsx()
    else:
        return None
    return tree_sitter.Parser(tree_sitter.Language(lang))


def enclosing_definition(path: str, text: str, first: int, last: int) -> tuple[int, int] | None:
    """The 1-based line span of the innermost function or method that contains lines
    ``first``..``last`` of ``text``, or None (module top level, or not a supported language)."""
    suffix = Path(path).suffix
    parser = _parser(suffix)
    if parser is None:
        return None
    kinds = _DEFINITIONS["python" if suffix.startswith(".py") else "js"]
    tree = parser.parse(text.encode("utf-8"))
    best: tuple[int, int] | None = None
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        start, end = node.start_point[0] + 1, node.end_point[0] + 1
        if start > first or end < last:
            continue
        if node.type in kinds and end > start:
            span = (start, end)
            # a decorated Python function starts at its first decorator
            if node.parent is not None and node.parent.type == "decorated_definition":
                span = (node.parent.start_point[0] + 1, end)
            if best is None or span[1] - span[0] <= best[1] - best[0]:
                best = span
        stack.extend(node.children)
    return best


_HUNK_HEADER = re.compile(r"^\S+ @@ -\d+(,\d+)? \+\d+(,\d+)? @@")


def code_lines(prompt: str) -> list[str]:
    """The prompt's lines, without the rendered hunk headers: git's section heading after ``@@``
    is a guess at the enclosing function, not the code, and does not count as showing a line."""
    return [ln.rstrip() for ln in prompt.splitlines() if not _HUNK_HEADER.match(ln)]


def shown(line: str, prompt_lines: Sequence[str]) -> bool:
    """Whether ``line`` (stripped) is a line of the prompt, whatever is in front of it there
    (``R12 +``, ``C13``, ...)."""
    return any(pl.endswith(line) for pl in prompt_lines)


def shown_in_order(lines: Sequence[str], prompt: str) -> bool:
    """Whether every non-blank line of ``lines`` appears in ``prompt``, in order, each on a line
    of its own (whatever the prompt puts in front of it: ``R12 +``, ``C13``, ...)."""
    prompt_lines = code_lines(prompt)
    at = 0
    for want in (ln.strip() for ln in lines):
        if not want:
            continue
        while at < len(prompt_lines) and not prompt_lines[at].endswith(want):
            at += 1
        if at == len(prompt_lines):
            return False
        at += 1
    return True


# --------------------------------------------------------------------------------------------
# Exact tokens


@cache
def _o200k() -> Any:
    # bpe_openai 0.1.4 loads its ranks with importlib.resources.open_binary, deprecated since
    # Python 3.11; the warning is theirs, and the test suite turns warnings into errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from bpe_openai import get_encoding  # noqa: PLC0415

        return get_encoding("o200k_base")


def exact_tokens(messages: Sequence[Mapping[str, str]], schema: Mapping[str, Any] | None) -> int:
    enc = _o200k()
    n = TOKENS_PER_REPLY
    for m in messages:
        n += TOKENS_PER_MESSAGE + len(enc.encode(m["role"])) + len(enc.encode(m["content"]))
    if schema is not None:
        n += len(enc.encode(json.dumps(schema, separators=(",", ":"))))
    return n


# --------------------------------------------------------------------------------------------
# Scoring (pure)


@dataclass(frozen=True)
class Need:
    pattern: str
    side: str = "new"  # "new" | "old"


@dataclass(frozen=True)
class ContextCase:
    name: str
    ecosystem: str
    diff: str
    fix: str  # a pattern naming the fix hunk (an added or removed line)
    needs: tuple[Need, ...]
    texts: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    readme: str = ""


@dataclass(frozen=True)
class TaskTokens:
    case: str
    task: str
    tier: str
    alias: str
    estimate: int
    exact: int
    exact_long_body: int
    budget: int


@dataclass(frozen=True)
class DefinitionCheck:
    case: str
    hunk: str
    tier: str
    lines: int
    whole: bool


@dataclass
class CaseScore:
    case: ContextCase
    fix_tier: str
    needed: list[tuple[str, bool]]  # (needed line, in the reviewing task's prompt)
    definitions: list[DefinitionCheck]
    tokens: list[TaskTokens]

    @property
    def all_needed(self) -> bool:
        return all(ok for _, ok in self.needed)


def needed_lines(case: ContextCase, path: str, fix_hunk: Hunk) -> list[str]:
    """The text of each needed line, checked: one line per pattern, not among the lines the fix
    hunk itself shows (the cause must lie outside git's context). Raises ValueError."""
    old, new = case.texts.get(path, (None, None))
    shown = {ln.text.strip() for ln in fix_hunk.lines}
    out = []
    for need in case.needs:
        text = new if need.side == "new" else old
        if text is None:
            raise ValueError(f"{case.name}: no {need.side} side of {path} for {need.pattern!r}")
        hits = [ln for ln in text.splitlines() if re.search(need.pattern, ln)]
        if len(hits) != 1:
            raise ValueError(
                f"{case.name}: need {need.pattern!r} matches {len(hits)} lines of the {need.side}"
                f" {path}; make it match exactly one"
            )
        line = hits[0].strip()
        if line in shown:
            raise ValueError(f"{case.name}: need {need.pattern!r} is shown by the fix hunk itself")
        out.append(line)
    return out


def _may_escalate(task: Task, plan: Plan) -> bool:
    # as the pipeline decides it (core/pipeline.py): the cheaper aliases may flag for deep review
    cfg = plan.config.config
    return (
        cfg.escalation.enabled
        and cfg.escalation.max_hunks > 0
        and task.alias != cfg.tiers.alias(Tier.DEEP)
        and not task.id.startswith("escalated-")
    )


def _prompt(task: Task, plan: Plan, pr: PullRequestText) -> tuple[list[Any], dict[str, Any]]:
    escalate = _may_escalate(task, plan)
    return list(build_messages(task, pr, escalate=escalate)), response_schema(escalate=escalate)


def _changed_span(hunk: Hunk) -> tuple[str, int, int] | None:
    new = [ln.new_no for ln in hunk.lines if ln.kind is LineKind.ADDED and ln.new_no]
    if new:
        return "new", min(new), max(new)
    old = [ln.old_no for ln in hunk.lines if ln.kind is LineKind.DELETED and ln.old_no]
    return ("old", min(old), max(old)) if old else None


def long_body(readme: str) -> str:
    base = readme.strip() or "This change updates the package."
    return (base + "\n\n") * (LONG_BODY_CHARS // (len(base) + 2) + 1)


def score(case: ContextCase, loaded: LoadedConfig, *, mode: str = "diff") -> CaseScore:
    """Plan ``case`` in ``mode``, build every task's prompt, and measure it."""
    if mode == "source" and not planner_takes_sources():
        raise ValueError("source mode unavailable: build_plan takes no sources= keyword yet")
    diff = parse_diff(case.diff)
    extra: dict[str, Any] = {}
    if mode == "source":
        files = {p: FileSource(p, o, n) for p, (o, n) in case.texts.items()}
        extra["sources"] = Sources(mode=SourceMode.REPO, files=files)
    plan = build_plan(diff, loaded, None, **extra)
    fix_re = re.compile(case.fix)
    pr = PullRequestText(title=case.name, body="Fixes a bug; see the changelog.")
    pr_long = PullRequestText(title=case.name, body=long_body(case.readme)[:LONG_BODY_CHARS])

    fix_task: Task | None = None
    fix_hunk: Hunk | None = None
    for task in plan.tasks:
        for th in task.hunks:
            if any(
                ln.kind is not LineKind.CONTEXT and fix_re.search(ln.text) for ln in th.hunk.lines
            ):
                fix_task, fix_hunk = task, th.hunk
                break
        if fix_task is not None:
            break
    if fix_task is None or fix_hunk is None:
        raise ValueError(f"{case.name}: no task reviews a hunk matching {case.fix!r}")
    needs = needed_lines(case, fix_hunk.path, fix_hunk)
    messages, _ = _prompt(fix_task, plan, pr)
    user = code_lines(messages[-1]["content"])
    needed = [(line, shown(line, user)) for line in needs]

    definitions: list[DefinitionCheck] = []
    tokens: list[TaskTokens] = []
    for task in plan.tasks:
        messages, schema = _prompt(task, plan, pr)
        long_messages, _ = _prompt(task, plan, pr_long)
        tokens.append(
            TaskTokens(
                case.name,
                task.id,
                task.tier.value,
                task.alias,
                task.est_input_tokens,
                exact_tokens(messages, schema),
                exact_tokens(long_messages, schema),
                loaded.config.routes[task.alias].max_input_tokens,
            )
        )
        if task.tier not in (Tier.LOGIC, Tier.DEEP):
            continue
        prompt = messages[-1]["content"]
        for th in task.hunks:
            span = _changed_span(th.hunk)
            old, new = case.texts.get(th.hunk.path, (None, None))
            if span is None:
                continue
            side, first, last = span
            text = new if side == "new" else old
            if text is None:
                continue
            found = enclosing_definition(th.hunk.path, text, first, last)
            if found is None:
                continue
            body = text.splitlines()[found[0] - 1 : found[1]]
            definitions.append(
                DefinitionCheck(
                    case.name,
                    f"{th.hunk.path} {th.hunk.header}",
                    task.tier.value,
                    len(body),
                    shown_in_order(body, prompt),
                )
            )
    return CaseScore(case, fix_task.tier.value, needed, definitions, tokens)


@dataclass
class Report:
    mode: str
    scores: list[CaseScore]

    def needed_share(self, eco: str | None = None) -> tuple[int, int]:
        s = [c for c in self.scores if eco in (None, c.case.ecosystem)]
        return sum(c.all_needed for c in s), len(s)

    def whole_share(self, *, long: bool = False) -> tuple[int, int]:
        d = [x for c in self.scores for x in c.definitions if (x.lines > LONG_DEFINITION) == long]
        return sum(x.whole for x in d), len(d)

    def tokens(self) -> list[TaskTokens]:
        return [t for c in self.scores for t in c.tokens]

    def over_budget(self, *, long_body: bool = False) -> list[TaskTokens]:
        return [
            t for t in self.tokens() if (t.exact_long_body if long_body else t.exact) > t.budget
        ]

    def missed(self) -> list[str]:
        out = []
        n, d = self.needed_share()
        if d and n / d < TARGETS["needed"]:
            out.append(f"needed lines in {n}/{d} cases")
        n, d = self.whole_share()
        if d and n / d < TARGETS["whole"]:
            out.append(f"enclosing definition whole in {n}/{d} logic/deep hunks")
        over = self.over_budget() + self.over_budget(long_body=True)
        if over:
            out.append(f"{len(over)} task prompts over their alias's max_input_tokens")
        return [f"{self.mode}: {m}" for m in out]


def _pct(n: int, d: int) -> str:
    return f"{n / d:.1%} ({n}/{d})" if d else "- (0/0)"


def render(report: Report, *, verbose: bool = False) -> str:
    label = "with source" if report.mode == "source" else "diff-only"
    out = [f"== {label} =="]
    if verbose:
        for c in report.scores:
            out.append(f"{c.case.name}: fix hunk {c.fix_tier}")
            for line, ok in c.needed:
                out.append(f"    need {'yes' if ok else 'NO '} {line[:90]}")
            for x in c.definitions:
                out.append(
                    f"    def  {'whole' if x.whole else 'PART '} {x.lines:>4} lines {x.hunk[:70]}"
                )
    n, d = report.needed_share()
    out.append(f"cases whose reviewing task carries every needed line: {_pct(n, d)}")
    for eco, label in (("pypi", "Python"), ("npm", "JS/TS")):
        n, d = report.needed_share(eco)
        out.append(f"  {label:<7}: {_pct(n, d)}")
    lines = [ok for c in report.scores for _, ok in c.needed]
    out.append(f"needed lines present: {_pct(sum(lines), len(lines))}")
    n, d = report.whole_share()
    out.append(
        f"logic/deep hunks with the enclosing definition whole (<= {LONG_DEFINITION} lines): "
        f"{_pct(n, d)}"
    )
    n, d = report.whole_share(long=True)
    out.append(f"  definitions over {LONG_DEFINITION} lines, whole: {_pct(n, d)}")
    out.append(
        f"{'tier':<6} {'alias':<12} {'tasks':>5} {'median':>7} {'max':>7} {'budget':>7} "
        f"{'max %':>6} {'exact/est':>9} {'60k body max':>12} {'over':>5}"
    )
    tokens = report.tokens()
    for tier in ("fast", "logic", "deep"):
        ts = [t for t in tokens if t.tier == tier]
        if not ts:
            continue
        exact = [t.exact for t in ts]
        ratio = statistics.median(t.exact / t.estimate for t in ts if t.estimate)
        over = sum(t.exact > t.budget for t in ts) + sum(t.exact_long_body > t.budget for t in ts)
        share = max(t.exact / t.budget for t in ts)
        out.append(
            f"{tier:<6} {ts[0].alias:<12} {len(ts):>5} {statistics.median(exact):>7.0f} "
            f"{max(exact):>7} {ts[0].budget:>7} {share:>6.1%} "
            f"{ratio:>9.2f} {max(t.exact_long_body for t in ts):>12} {over:>5}"
        )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Building the corpus (network, cache)


def _readme(spec: Mapping[str, Any], cache: Path, *, offline: bool) -> str:
    files = read_archive(
        fetch(
            str(spec.get("ecosystem", "pypi")),
            spec["package"],
            str(spec["after"]),
            cache,
            offline=offline,
        )
    )
    for name in sorted(files, key=len):
        if re.fullmatch(r"(?i)readme(\.(md|rst|txt|markdown))?", name):
            return files[name].decode("utf-8", "replace")
    return ""


def build_case(spec: Mapping[str, Any], cache: Path, *, offline: bool) -> ContextCase:
    pair = release_pair(spec, cache, offline=offline, exact_files=True)
    needs = tuple(
        Need(n)
        if isinstance(n, str)
        else Need(str(n.get("old") or n["new"]), "old" if "old" in n else "new")
        for n in spec["needs"]
    )
    return ContextCase(
        name=f"{spec['package']} {spec['before']}..{spec['after']}",
        ecosystem=str(spec.get("ecosystem", "pypi")),
        diff=pair.diff,
        fix=str(spec["fix"]),
        needs=needs,
        texts={p: (pair.old[p], pair.new[p]) for p in pair.old},
        readme=_readme(spec, cache, offline=offline),
    )


def load_corpus(path: Path, cache: Path, *, offline: bool) -> list[ContextCase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [build_case(spec, cache, offline=offline) for spec in data["cases"]]


def evaluate(
    cases: Iterable[ContextCase],
    loaded: LoadedConfig,
    *,
    mode: str,
) -> Report:
    return Report(mode, [score(c, loaded, mode=mode) for c in cases])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--config", type=Path, default=PACKAGED_CONFIG)
    ap.add_argument("--offline", action="store_true", help="use only cached downloads")
    ap.add_argument("--mode", choices=[*MODES, "both"], default="both")
    ap.add_argument("-v", "--verbose", action="store_true", help="every case, line and definition")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    modes = MODES if args.mode == "both" else (args.mode,)
    try:
        cases = load_corpus(args.cases, args.cache_dir, offline=args.offline)
        loaded = load_config(str(args.config))
        reports: dict[str, Report | None] = {}
        for mode in modes:
            reports[mode] = (
                None
                if mode == "source" and not planner_takes_sources()
                else evaluate(cases, loaded, mode=mode)
            )
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"context_eval: cannot build the corpus: {exc}", file=sys.stderr)
        return 2
    missed: list[str] = []
    for r in reports.values():
        if r is None:
            missed.append("with source: unavailable (the planner takes no sources)")
        else:
            missed += r.missed()
    if args.json:
        print(
            json.dumps(
                {
                    "missed": missed,
                    "met": not missed,
                    **{
                        m: None
                        if r is None
                        else {
                            "needed": r.needed_share(),
                            "whole": r.whole_share(),
                            "over_budget": len(r.over_budget()),
                            "over_budget_long_body": len(r.over_budget(long_body=True)),
                        }
                        for m, r in reports.items()
                    },
                }
            )
        )
    else:
        print(
            f"corpus: {len(cases)} cases ({sum(c.ecosystem == 'pypi' for c in cases)} PyPI, "
            f"{sum(c.ecosystem == 'npm' for c in cases)} npm)"
        )
        for r in reports.values():
            if r is None:
                print(
                    "== with source ==\nsource mode unavailable: build_plan takes no sources= "
                    "keyword on this code; only diff-only was run"
                )
            else:
                sys.stdout.write(render(r, verbose=args.verbose))
        print("targets met" if not missed else "targets missed: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
