"""Print the mutation score of the mutants ``make mutants`` ran, per module and in total, and
list every survivor (mutmut 3 keeps its verdicts in mutants/**/*.py.meta).

    python scripts/mutation_score.py 'depthgate.core.placement.*' ...

Score = killed / (killed + survived + no tests + timeout + suspicious); mutants not yet checked
are counted apart, so a run that was stopped halfway says so instead of looking better.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent


def verdicts(patterns: list[str]) -> dict[str, str]:
    out = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for name, code in data.get("exit_code_by_key", {}).items():
            if not patterns or any(fnmatch.fnmatch(name, p) for p in patterns):
                out[name] = status_by_exit_code[code]
    return out


def main(argv: list[str]) -> int:
    found = verdicts(argv)
    if not found:
        print("no mutants found: run `make mutants` first", file=sys.stderr)
        return 2
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in found.items():
        by_module[name.split(".x")[0]][status] += 1
    total: Counter[str] = Counter()
    head = ("module", "killed", "survived", "other", "unchecked", "score")
    print(f"{head[0]:32} {head[1]:>7} {head[2]:>9} {head[3]:>6} {head[4]:>10} {head[5]:>7}")
    for module, c in sorted(by_module.items()):
        total += c
        print(_row(module, c))
    print(_row("total", total))
    survivors = sorted(n for n, s in found.items() if s not in {"killed", "not checked"})
    if survivors:
        print(f"\n{len(survivors)} not killed (`mutmut show NAME` prints the change):")
        for name in survivors:
            print(f"  {found[name]:10} {name}")
    return 0


def _row(label: str, c: Counter[str]) -> str:
    checked = sum(n for s, n in c.items() if s != "not checked")
    other = checked - c["killed"] - c["survived"]
    score = f"{100 * c['killed'] / checked:.1f}%" if checked else "-"
    return (
        f"{label:32} {c['killed']:>7} {c['survived']:>9} {other:>6} {c['not checked']:>10} "
        f"{score:>7}"
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
