"""A review run the way GitHub Actions does it, timed (issue #4's targets).

``depthgate review`` runs as a subprocess with the environment Actions sets (GITHUB_ACTIONS,
GITHUB_EVENT_PATH at GitHub's real ``opened`` payload, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, ...)
against the fake GitHub (real HTTP on 127.0.0.1) and a fake upstream that answers every call
after 200 ms, on a 3-file PR. Prints:

* time from process start to the first GitHub request (target <= 1 s),
* wall time of the run,
* GitHub reads and writes (targets <= 6 and <= 2),
* gateway calls,
* the installed size of depthgate and its runtime dependencies, the packages of
  requirements/action.txt as installed in this venv (target < 75 MB; pip and setuptools are the
  venv's tooling, listed apart).

Loopback only; nothing is written outside a temporary directory. Usage: ``python
bench/action_bench.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.github import serve_github  # noqa: E402
from tests.fakes.samples import FILES, routes  # noqa: E402
from tests.fakes.upstream import Behavior, running  # noqa: E402

PAYLOAD = ROOT / "tests" / "data" / "webhooks" / "pull_request" / "opened.payload.json"
DEPTHGATE = Path(sys.executable).parent / "depthgate"


def one_run(tmp: Path, n: int) -> dict[str, float]:
    event = json.loads(PAYLOAD.read_text())
    repo = event["repository"]["full_name"]
    number = event["pull_request"]["number"]
    head = event["pull_request"]["head"]["sha"]
    (tmp / "routes.yaml").write_text(routes())
    with serve_github() as gh, running() as up:
        up.default = Behavior(echo_finding=True, delay_s=0.2)
        gh.add_pull(repo, number, head_sha=head, files=FILES)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(PAYLOAD),
            "GITHUB_OUTPUT": str(tmp / f"output{n}"),
            "GITHUB_STEP_SUMMARY": str(tmp / f"summary{n}.md"),
            "RUNNER_TEMP": str(tmp),
            "GITHUB_API_URL": gh.url,
            "GITHUB_TOKEN": "ghs_test_write",
            "DEPTHGATE_CONFIG": str(tmp / "routes.yaml"),
            "DEPTHGATE_GATEWAY_URL": up.url,
            "DEPTHGATE_GATEWAY_KEY": "sk-bench-0123456789",
            # PyGithub's 1 s spacing of writes is GitHub's etiquette, not depthgate's cost
            "DEPTHGATE_GITHUB_WRITE_INTERVAL_S": "0",
        }
        start = time.monotonic()
        proc = subprocess.run(
            [str(DEPTHGATE), "review"], env=env, capture_output=True, text=True, check=False
        )
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"review failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        first = min(r.ts for r in gh.requests)
        return {
            "first_request_s": first - start,
            "wall_s": wall,
            "reads": len(gh.reads()),
            "writes": len(gh.writes()),
            "gateway_calls": len(up.calls()),
        }


def installed_size() -> tuple[float, float, list[tuple[str, float]]]:
    """MB of depthgate + the locked runtime packages, and of the venv's pip/setuptools."""
    lock = (ROOT / "requirements" / "action.txt").read_text()
    names = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    tooling = {"pip", "setuptools"}
    sizes: list[tuple[str, float]] = []
    tool_mb = 0.0
    for name in sorted(names | {"depthgate", "pip"}):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total = 0
        for f in dist.files or ():
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                total += path.stat().st_size
        mb = total / 1e6
        if name in tooling:
            tool_mb += mb
        else:
            sizes.append((name, mb))
    return sum(mb for _, mb in sizes), tool_mb, sorted(sizes, key=lambda s: -s[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            results.append(one_run(Path(tmp), n))
    first = [r["first_request_s"] for r in results]
    wall = [r["wall_s"] for r in results]
    last = results[-1]
    runtime_mb, tool_mb, biggest = installed_size()
    print(f"action bench: {args.runs} runs of `depthgate review` as Actions runs it (3-file PR)")
    print(
        f"  first GitHub request after process start: median {statistics.median(first):.2f} s "
        f"(min {min(first):.2f}, max {max(first):.2f})   target <= 1 s"
    )
    print(f"  wall time: median {statistics.median(wall):.2f} s (upstream answers in 200 ms)")
    print(
        f"  GitHub reads {last['reads']:.0f} (target <= 6), writes {last['writes']:.0f} "
        f"(target <= 2); gateway calls {last['gateway_calls']:.0f}"
    )
    top = ", ".join(f"{n} {mb:.1f}" for n, mb in biggest[:6])
    print(
        f"  installed size of depthgate + runtime dependencies: {runtime_mb:.1f} MB "
        f"(target < 75 MB; largest: {top}); pip/setuptools in the venv: {tool_mb:.1f} MB more"
    )


if __name__ == "__main__":
    main()
