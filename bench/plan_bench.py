"""Benchmark: `depthgate plan` on a synthetic PR against unidiff's bare parse of the same text.

    .venv/bin/python bench/plan_bench.py [--files 500] [--lines-per-file 100] [--repeat 5]

Generates a diff of >= 50,000 changed lines over >= 500 files (Python, JS, Go, YAML, Markdown,
with some security-sensitive lines and paths so every rule family runs), then times, each in a
fresh process so peak memory is its own:

* parse -- ``unidiff.PatchSet(text)``, nothing else;
* plan  -- the whole plan: load the config, parse into depthgate's model, classify, pack;
* plan + JSON -- the same plus rendering it as ``depthgate plan --format json`` prints it
  (every hunk's anchors and reasons), shown separately;
* plan with source -- the plan given every changed file's old and new text (as ``--repo`` or the
  Action hands them over: built before the clock starts), so the classifier parses whole files
  and reads each hunk's enclosing definitions (issue #11 target: <= 2x the plan without).

Prints wall time (fastest of --repeat alternated runs), peak RSS of each side in a process of
its own, and the ratio plan / parse.
Targets (issue #2): ratio <= 3, peak memory < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from unidiff.patch import PatchSet

from depthgate.configfile import load_config
from depthgate.core.diff import LineKind, parse_diff
from depthgate.core.plan import build_plan, plan_to_dict
from depthgate.core.source import FileSource, SourceMode, Sources

KINDS = [
    ("py", "    value_{i} = compute(item, {i})", "    if item.flag_{i}:"),
    ("js", "  const value{i} = compute(item, {i});", "  if (item.flag{i}) {{ return {i}; }}"),
    ("go", "\tvalue{i} := compute(item, {i})", "\tif item.Flag{i} {{ return {i} }}"),
    ("yaml", "key_{i}: value {i}", "key_{i}: other {i}"),
    ("md", "Some documentation sentence number {i}.", "Another sentence, number {i}."),
]
SPICE = [
    "    subprocess.run(cmd, shell=True)",
    "    data = pickle.loads(blob)",
    "    requests.get(url, verify=False)",
]


def synth(files: int, lines_per_file: int, seed: int = 7) -> str:
    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    out = []
    for n in range(files):
        ext, plain, flow = KINDS[n % len(KINDS)]
        folder = "auth" if n % 50 == 0 else f"pkg{n % 17}"
        path = f"src/{folder}/module_{n}.{ext}"
        out.append(f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n")
        out.append(f"--- a/{path}\n+++ b/{path}\n")
        old_line = 1
        new_line = 1
        remaining = lines_per_file
        while remaining > 0:
            added = min(remaining, rnd.randint(3, 12))
            deleted = rnd.randint(0, 3)
            old_line += rnd.randint(5, 40)
            new_line = old_line + (new_line - old_line if new_line > old_line else 0)
            body = [f" context line before {old_line}"]
            body += [f"-{plain.format(i=old_line + k)} # old" for k in range(deleted)]
            for k in range(added):
                if ext == "py" and rnd.random() < 0.01:
                    body.append("+" + rnd.choice(SPICE))
                elif rnd.random() < 0.1:
                    body.append("+" + flow.format(i=k))
                else:
                    body.append("+" + plain.format(i=old_line + k))
            body.append(f" context line after {old_line}")
            old_len, new_len = deleted + 2, added + 2
            out.append(f"@@ -{old_line},{old_len} +{new_line},{new_len} @@ def fn_{old_line}():\n")
            out.append("\n".join(body) + "\n")
            old_line += old_len
            new_line += new_len
            remaining -= added + deleted
    return "".join(out)


# A definition every so many lines of the synthetic files, so hunks have enclosing code.
DEF_EVERY = 30
HEADERS = {
    "py": "def fn_{i}(item):",
    "js": "function fn{i}(item) {{",
    "go": "func fn{i}(item Item) int {{",
}


def sources_for(text: str) -> Sources:
    """Old and new text of every file of the synthetic diff: the diff's own lines where it has
    them, code of the file's kind (and a definition header every ``DEF_EVERY`` lines) between."""
    files = {}
    for f in parse_diff(text).files:
        ext = f.path.rsplit(".", 1)[-1]
        plain = next(p for e, p, _ in KINDS if e == ext)
        header = HEADERS.get(ext)
        sides = []
        for kind, no in ((LineKind.ADDED, "old_no"), (LineKind.DELETED, "new_no")):
            known = {
                getattr(ln, no): ln.text for h in f.hunks for ln in h.lines if ln.kind is not kind
            }
            last = max(known, default=0) + 5
            lines = [known.get(n) or _filler(n, ext, plain, header) for n in range(1, last + 1)]
            sides.append("\n".join(lines) + "\n")
        files[f.path] = FileSource(f.path, sides[0], sides[1])
    return Sources(SourceMode.REPO, files)


def _filler(n: int, ext: str, plain: str, header: str | None) -> str:
    if header is None:
        return plain.format(i=n)
    if n % DEF_EVERY == 1:
        return header.format(i=n)
    if n % DEF_EVERY == 0 and ext != "py":
        return "}"
    return plain.format(i=n)


def child(mode: str, path: str, repeat: int) -> None:
    """Measure in this process and print JSON.

    ``time``: both sides, alternated ``repeat`` times, fastest run of each -- alternating puts
    both under the same machine load, and the fastest run is the one least disturbed by it.
    ``parse`` / ``plan``: one run of that side alone, for its peak RSS.
    Imports happen before any clock starts: the figures compare work, not interpreter start-up.
    Loading and validating the config is part of every plan run.
    """
    text = Path(path).read_text(encoding="utf-8")

    def parse() -> None:
        PatchSet(text)

    def plan() -> None:
        loaded = load_config(None, cwd=Path(tempfile.gettempdir()))
        build_plan(parse_diff(text), loaded)

    def plan_json() -> None:
        loaded = load_config(None, cwd=Path(tempfile.gettempdir()))
        json.dumps(plan_to_dict(build_plan(parse_diff(text), loaded)))

    sources = sources_for(text)

    def plan_source() -> None:
        loaded = load_config(None, cwd=Path(tempfile.gettempdir()))
        build_plan(parse_diff(text), loaded, sources=sources)

    sides = {"parse": parse, "plan": plan, "plan_json": plan_json, "plan_source": plan_source}
    if mode == "baseline":  # imports and the read only: subtracted from instruction counts
        return
    if mode != "time":
        sides[mode]()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_mb": peak_mb}))
        return
    best = {name: float("inf") for name in sides}
    for _ in range(repeat):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    print(json.dumps(best))


def run_child(mode: str, path: str, repeat: int) -> dict[str, float]:
    res = subprocess.run(
        [sys.executable, __file__, "--child", mode, path, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, float] = json.loads(res.stdout)
    return data


def instructions(mode: str, path: str) -> int:
    """Instructions one child executes, counted by valgrind's callgrind (slow, but exact and
    repeatable whatever else the machine is doing)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                mode,
                path,
                "--repeat",
                "1",
            ],
            capture_output=True,
            check=True,
        )
        for line in out.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--lines-per-file", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5, help="runs per side; the fastest counts")
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions with valgrind (minutes; immune to machine load)",
    )
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.repeat)
        return 0
    text = synth(args.files, args.lines_per_file)
    changed = sum(
        1 for line in text.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )
    with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False, encoding="utf-8") as fh:
        fh.write(text)
        path = fh.name
    try:
        times = run_child("time", path, args.repeat)
        parse_s, plan_s, json_s = times["parse"], times["plan"], times["plan_json"]
        source_s = times["plan_source"]
        parse_mb = run_child("parse", path, 1)["peak_mb"]
        plan_mb = run_child("plan_json", path, 1)["peak_mb"]
        counts = {}
        if args.instructions:
            counts = {m: instructions(m, path) for m in ("baseline", "parse", "plan")}
    finally:
        Path(path).unlink()
    print(
        f"synthetic diff: {args.files} files, {changed:,} changed lines, {len(text) / 1e6:.1f} MB"
    )
    print(f"unidiff bare parse: {parse_s:.3f} s, peak RSS {parse_mb:.0f} MB")
    print(f"depthgate plan:     {plan_s:.3f} s  (config, parse, classify, pack)")
    print(f"  + JSON output:    {json_s:.3f} s, peak RSS {plan_mb:.0f} MB  (`plan --format json`)")
    print(f"  with source:      {source_s:.3f} s  (whole files parsed, enclosing code read)")
    print(f"ratio plan/parse:   {plan_s / parse_s:.2f}  (target <= 3)")
    print(f"ratio source/plan:  {source_s / plan_s:.2f}  (target <= 2)")
    print(f"  with JSON output: {json_s / parse_s:.2f}")
    print(f"peak memory:        {plan_mb:.0f} MB  (target < 300 MB)")
    if counts:
        parse_i = counts["parse"] - counts["baseline"]
        plan_i = counts["plan"] - counts["baseline"]
        print(
            f"instructions (callgrind, start-up subtracted): parse {parse_i / 1e9:.2f} G, "
            f"plan {plan_i / 1e9:.2f} G, ratio {plan_i / parse_i:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
