"""Benchmark: `depthgate plan` on a synthetic PR against unidiff's bare parse of the same text.

    .venv/bin/python bench/plan_bench.py [--files 500] [--lines-per-file 100] [--repeat 5]
                                         [--baseline REV] [--same-as REV]

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

"Today's plan time" of issue #11 is the planner before the syntax layer: ``--baseline REV``
(default ``47cf8ea``, main when the issue was filed) is measured, not recorded -- its ``src/`` is
taken from git (``git archive``) into a temporary directory and its ``plan`` is timed on the same
diff file by the same loop as ours (``BASELINE_CHILD``), in a process of its own, before and after
the current code's runs (the faster of the two counts). Target: plan with source <= 2x that plan.
Every side is also timed in CPU seconds of its process, which a shared machine's load disturbs
less than wall time.

``--same-as REV`` checks that the current code plans exactly as REV does (a speed change must
not change routing): the whole ``plan --format json`` document (tiers, reasons, enclosing
definitions, tasks, context blocks and a digest of every context block's lines) of this diff,
diff-only and with source, and of this repository's own diff ``47cf8ea..a846db9`` with its files
read from git as sources, made by REV's code and by the current code, must be equal.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "47cf8ea"  # main when issue #11 was filed: the planner before the syntax layer
# A real diff of this repository (the wave of issue #11) for --same-as, with sources from git.
REPO_DIFF = ("47cf8ea", "a846db9")


@contextmanager
def tree_at(rev: str) -> Iterator[Path]:
    """``src/`` of ``rev`` in a temporary directory (git archive: no worktree to clean up)."""
    res = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "archive",
            "--format=tar",
            rev,
            "src",
            "bench",
        ],  # bench: --same-as
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        msg = res.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"cannot read {rev} from git: {msg}")
    with tempfile.TemporaryDirectory(prefix=f"plan-bench-{rev}-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


# The plan side of ``child`` for any revision's layout (modules moved under core/ in db5a2e0).
BASELINE_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
try:
    from depthgate.configfile import load_config
    from depthgate.core.diff import parse_diff
    from depthgate.core.plan import build_plan
except ImportError:
    from depthgate.diff import parse_diff
    from depthgate.plan import build_plan
    from depthgate.routes import load_config
text = Path(sys.argv[1]).read_text(encoding="utf-8")
wall = cpu = float("inf")
for _ in range(int(sys.argv[2])):
    w, c = time.perf_counter(), time.process_time()
    loaded = load_config(None, cwd=Path(tempfile.gettempdir()))
    build_plan(parse_diff(text), loaded)
    wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
print(json.dumps({"plan": wall, "plan_cpu": cpu}))
"""


def baseline_plan(tree: Path, path: str, repeat: int) -> dict[str, float]:
    """The plan time (wall, CPU) of the code in ``tree``, timed as ``child`` times ours."""
    res = subprocess.run(
        [sys.executable, "-c", BASELINE_CHILD, path, str(repeat)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
    )
    data: dict[str, float] = json.loads(res.stdout)
    return data


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout


def repo_corpus(out: Path) -> tuple[Path, Path]:
    """This repository's diff ``REPO_DIFF`` and its files on both sides, as two files."""
    a, b = REPO_DIFF
    text = _git("diff", "--no-color", "--no-renames", a, b)
    files = {}
    for f in parse_diff(text).files:
        sides = []
        for rev, p in ((a, f.old_path), (b, f.path)):
            shown = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{p}"], capture_output=True, check=False
            )
            ok = shown.returncode == 0
            sides.append(shown.stdout.decode("utf-8", "surrogateescape") if ok else None)
        files[f.path] = sides
    diff_path, src_path = out / "repo.diff", out / "repo-sources.json"
    diff_path.write_text(text, encoding="utf-8", errors="surrogateescape")
    src_path.write_text(json.dumps(files), encoding="utf-8", errors="surrogateescape")
    return diff_path, src_path


def dump(diff_path: str, sources_path: str | None) -> dict[str, object]:
    """The plan of a diff as ``plan --format json`` has it, diff-only and with source, plus a
    digest of every context block's lines (the JSON names a block, not its text)."""
    text = Path(diff_path).read_text(encoding="utf-8", errors="surrogateescape")
    if sources_path is None:
        sources = sources_for(text)
    else:
        raw = json.loads(Path(sources_path).read_text(encoding="utf-8", errors="surrogateescape"))
        sources = Sources(
            SourceMode.REPO, {p: FileSource(p, old, new) for p, (old, new) in raw.items()}
        )
    out: dict[str, object] = {}
    for name, src in (("diff_only", None), ("with_source", sources)):
        loaded = load_config(None, cwd=Path(tempfile.gettempdir()))
        diff = parse_diff(text)
        plan = build_plan(diff, loaded) if src is None else build_plan(diff, loaded, sources=src)
        data = plan_to_dict(plan)
        data["block_digests"] = [
            [hashlib.sha256(repr(b.lines).encode()).hexdigest()[:16] for b in t.blocks]
            for t in plan.tasks
        ]
        out[name] = data
    return out


def _first_difference(a: object, b: object, where: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{where or '/'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{where}/{k}: only in {'the current code' if k in b else 'REV'}"
            found = _first_difference(a[k], b[k], f"{where}/{k}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        return None
    return None if a == b else f"{where}: {a!r:.200} vs {b!r:.200}"


def same_as(rev: str, diff_path: str) -> int:
    """Compare the plans of REV's code and the current code (see the module's docstring)."""
    failed = 0
    with tree_at(rev) as tree, tempfile.TemporaryDirectory() as tmp:
        corpora: list[tuple[str, str, str | None]] = [("bench diff", diff_path, None)]
        try:
            repo_diff, repo_sources = repo_corpus(Path(tmp))
            corpora.append((f"repo diff {'..'.join(REPO_DIFF)}", str(repo_diff), str(repo_sources)))
        except subprocess.CalledProcessError as exc:
            print(f"repo diff: not checked ({exc.stderr.strip()[:200]})")
        for label, path, sources in corpora:
            dumps = []
            for src in (tree / "src", ROOT / "src"):
                out = Path(tmp, "dump.json")
                cmd = [sys.executable, __file__, "--child", "dump", path, "--out", str(out)]
                subprocess.run(
                    cmd + (["--sources", sources] if sources else []),
                    check=True,
                    env={**os.environ, "PYTHONPATH": str(src)},
                )
                dumps.append(json.loads(out.read_text(encoding="utf-8")))
            for mode in ("diff_only", "with_source"):
                old, new = dumps[0][mode], dumps[1][mode]
                old["depthgate"] = new["depthgate"]  # the version string may differ
                diff = _first_difference(old, new)
                hunks = sum(len(f["hunks"]) for f in new["files"])
                totals = new["totals"]
                tiers = ", ".join(f"{k} {v}" for k, v in totals["by_tier"].items())
                if diff is None:
                    print(
                        f"same plan as {rev}: {label}, {mode}: {hunks} hunks ({tiers}), "
                        f"{totals['tasks']} tasks"
                    )
                else:
                    failed += 1
                    print(f"PLAN DIFFERS from {rev}: {label}, {mode}: first at {diff}")
    return 1 if failed else 0


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
    best = {f"{name}{unit}": float("inf") for name in sides for unit in ("", "_cpu")}
    for _ in range(repeat):
        for name, fn in sides.items():
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], time.process_time() - cpu)
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


@contextmanager
def _baseline_tree(rev: str) -> Iterator[tuple[Path | None, str]]:
    if rev == "none":
        yield None, "--baseline none"
        return
    try:
        with tree_at(rev) as tree:
            yield tree, f"{rev}'s planner from git, same diff and loop, runs around ours"
    except RuntimeError as exc:
        yield None, str(exc)


def _timed(
    rev: str, path: str, repeat: int
) -> tuple[dict[str, float], dict[str, float] | None, str]:
    """The current code's times, and the baseline's plan measured before and after them (the
    faster of the two, wall and CPU apart)."""
    with _baseline_tree(rev) as (tree, note):
        before = baseline_plan(tree, path, repeat) if tree else None
        times = run_child("time", path, repeat)
        after = baseline_plan(tree, path, repeat) if tree else None
    base = None
    if before is not None and after is not None:
        base = {k: min(before[k], after[k]) for k in before}
    return times, base, note


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--lines-per-file", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5, help="runs per side; the fastest counts")
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions with valgrind (minutes; immune to machine load)",
    )
    ap.add_argument(
        "--baseline",
        default=BASELINE_REV,
        metavar="REV",
        help=f"the planner to compare with, measured from git (default {BASELINE_REV}); "
        "'none' to skip",
    )
    ap.add_argument(
        "--same-as",
        metavar="REV",
        help="only check that the current code's plans equal REV's (exit 1 when not)",
    )
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--sources", help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> int:
    args = _args()
    if args.child:
        if args.child[0] == "dump":
            data = dump(args.child[1], args.sources)
            Path(args.out).write_text(json.dumps(data), encoding="utf-8")
        else:
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
        if args.same_as:
            return same_as(args.same_as, path)
        times, base_s, base_note = _timed(args.baseline, path, args.repeat)
        parse_s, plan_s, json_s = times["parse"], times["plan"], times["plan_json"]
        source_s = times["plan_source"]
        cpu = {k.removesuffix("_cpu"): v for k, v in times.items() if k.endswith("_cpu")}
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
    print("wall time, fastest run (CPU time of the process, fastest run)")
    print(f"unidiff bare parse: {parse_s:.3f} s ({cpu['parse']:.3f}), peak RSS {parse_mb:.0f} MB")
    print(
        f"depthgate plan:     {plan_s:.3f} s ({cpu['plan']:.3f})  (config, parse, classify, pack)"
    )
    print(
        f"  + JSON output:    {json_s:.3f} s ({cpu['plan_json']:.3f}), peak RSS {plan_mb:.0f} MB"
        "  (`plan --format json`)"
    )
    print(
        f"  with source:      {source_s:.3f} s ({cpu['plan_source']:.3f})"
        "  (whole files parsed, enclosing code read)"
    )
    if base_s is not None:
        print(
            f"plan before:        {base_s['plan']:.3f} s ({base_s['plan_cpu']:.3f})  ({base_note})"
        )
    else:
        print(f"plan before:        not measured ({base_note})")
    print(f"ratio plan/parse:   {plan_s / parse_s:.2f}  (target <= 3)")
    print(f"ratio source/plan:  {source_s / plan_s:.2f}  (with source against diff-only, now)")
    if base_s is not None:
        b, bc = base_s["plan"], base_s["plan_cpu"]
        print(
            f"ratio source/before: {source_s / b:.2f} (CPU {cpu['plan_source'] / bc:.2f})"
            "  (target <= 2, issue #11)"
        )
        print(
            f"ratio plan/before:  {plan_s / b:.2f} (CPU {cpu['plan'] / bc:.2f})"
            "  (diff-only now against before)"
        )
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
