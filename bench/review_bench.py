"""Benchmark: a synthetic PR of >= 2,000 hunks reviewed against the fake upstream.

    .venv/bin/python bench/review_bench.py [--files 200] [--hunks-per-file 10]
                                           [--latency 0.2]

The upstream (bench/fake_asgi.py, uvicorn) runs in a process of its own, so its CPU time is not
counted, and answers every call after --latency seconds with one finding. Routes: review-fast
and review-deep, each with concurrency 8. Prints:

* wall time of the whole review (plan, calls, findings, placement, sanitizing);
* the lower bound: per alias ceil(calls / concurrency) x latency, aliases in parallel (the max);
* their ratio (target <= 1.2);
* gateway calls per reviewed hunk;
* CPU time of the reviewing process outside waiting (process time, not wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from depthgate.configfile import load_config  # noqa: E402
from depthgate.core.diff import parse_diff  # noqa: E402
from depthgate.core.pipeline import ReviewOptions, review  # noqa: E402
from depthgate.core.plan import build_plan  # noqa: E402
from depthgate.gateway.client import GatewaySettings, HttpGateway  # noqa: E402

ROUTES = textwrap.dedent(
    """\
    version: 1
    gateway: {{base_url_env: BENCH_URL, api_key_env: BENCH_KEY, profile: generic}}
    routes:
      review-fast: {{send_model: fast-model, max_input_tokens: 12000, max_output_tokens: 1000,
                    concurrency: 8, timeout_s: 30}}
      review-deep: {{send_model: deep-model, max_input_tokens: 100000, max_output_tokens: 4000,
                    concurrency: 8, timeout_s: 30}}
    tiers: {{fast: review-fast, logic: review-deep, deep: review-deep}}
    limits: {{max_hunks: {max_hunks}, max_comments: 100000, deep_context_tokens: 2000,
             logic_context_tokens: 1000}}
    """
)


def synth(files: int, hunks: int) -> str:
    out = []
    for f in range(files):
        ext = ("py", "md", "go", "yaml")[f % 4]
        path = f"pkg{f % 13}/mod_{f}.{ext}"
        out.append(f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n")
        for h in range(hunks):
            start = 1 + h * 40
            if ext == "py" and h % 5 == 0:
                body = ["+    if flag:", "+        return compute(x)"]
            elif ext == "go" and h % 7 == 0:
                body = ['+\tout, _ := exec.Command("sh", "-c", cmd).Output()']
            else:
                body = [f"+value_{h} = {h}"]
            out.append(
                f"@@ -{start},1 +{start},{len(body) + 1} @@\n context {h}\n"
                + "\n".join(body)
                + "\n"
            )
    return "".join(out)


async def run(url: str, text: str, max_hunks: int) -> tuple[float, float, dict[str, int], int]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp, "routes.yaml")
        cfg.write_text(ROUTES.format(max_hunks=max_hunks))
        loaded = load_config(str(cfg))
    settings = GatewaySettings.from_config(
        loaded.config.gateway, {"BENCH_URL": url, "BENCH_KEY": "bench-key-0123456789"}
    )
    wall0, cpu0 = time.perf_counter(), time.process_time()
    plan = build_plan(parse_diff(text), loaded)
    async with HttpGateway(settings, loaded.config.routes) as gw:
        outcome = await review(plan, gw, ReviewOptions(max_comments=100_000))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert outcome.complete, outcome.failures[:3]
    calls = {alias: u.calls for alias, u in outcome.usage.items()}
    reviewed = outcome.counts()["reviewed"]
    return wall, cpu, calls, reviewed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--hunks-per-file", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    text = synth(args.files, args.hunks_per_file)
    hunks = args.files * args.hunks_per_file
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_asgi.py"), str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        wall, cpu, calls, reviewed = asyncio.run(run(url, text, hunks))
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)
    bound = max(math.ceil(n / 8) * args.latency for n in calls.values() if n)
    total_calls = sum(calls.values())
    print(f"synthetic PR: {args.files} files, {hunks} hunks; {reviewed} reviewed")
    print(f"gateway calls: {calls} ({total_calls / reviewed:.3f} per reviewed hunk)")
    print(f"wall time:   {wall:.2f} s")
    print(
        f"lower bound: {bound:.2f} s  (per alias ceil(calls / 8) x {args.latency} s, in parallel)"
    )
    print(f"ratio:       {wall / bound:.2f}  (target <= 1.2)")
    print(f"CPU time:    {cpu:.2f} s in the reviewing process (waiting excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
