"""Benchmark: ``depthgate routes check`` on hostile configs, each in a fresh process.

    .venv/bin/python bench/hostile_config.py [--repeat 3]

The inputs of threats.md ("More bad inputs", repository-controlled config) and the largest file
the loader accepts:

* baseline -- a two-line valid file: the process start and imports every run pays;
* billion laughs -- nine levels of nine aliases, about 600 bytes (387 M strings if expanded);
* 100,000 deep -- ``[`` x 100,000 (``RecursionError`` in a plain loader);
* largest flat -- the largest accepted file (64 KB): one rule with as many globs as fit.

Each runs as ``routes check --config FILE`` and as ``--repository FILE``; prints the exit code,
the wall time of the process (fastest of --repeat; mostly the interpreter's start and imports,
see the baseline), the parse alone in this process (fastest of --repeat), the peak RSS of the
process and the first line of its stderr.
Targets (issue #10): exit 2 with one line for the hostile ones, well under a second each.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from depthgate.core.yamlsafe import MAX_CONFIG_BYTES

DEPTHGATE = Path(sys.executable).parent / "depthgate"


def inputs() -> dict[str, str]:
    laughs = (
        'version: 1\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(
            f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "classify: {skip_paths: {x: [*i]}}\n"
        + "# padding to the size of the probe's file " * 5
    )
    deep = "tiers: " + "[" * 100_000 + "]" * 100_000 + "\n"
    globs: list[str] = []
    size = 60
    while size < MAX_CONFIG_BYTES - 64:
        glob = f"    - generated/dir{len(globs):06d}/**\n"
        globs.append(glob)
        size += len(glob)
    flat = "classify:\n  skip_paths:\n   generated:\n" + "".join(globs)
    return {
        "baseline": "tiers: {deep: review-deep}\n",  # process start and imports alone
        "billion laughs": laughs,
        "100,000 deep": deep,
        "largest flat": flat,
    }


def run(args: list[str]) -> tuple[int, float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    line = (proc.stderr or proc.stdout).splitlines()[0] if (proc.stderr or proc.stdout) else ""
    return proc.returncode, wall, max(peak, before) / 1024, line


def in_process(text: str, flag: str, repeat: int) -> float:
    """The parse alone (no process start): fastest of ``repeat``, in seconds."""
    from depthgate.configfile import layer_repository_config, load_config  # noqa: PLC0415
    from depthgate.core.errors import ConfigError  # noqa: PLC0415
    from depthgate.core.routes import parse_config  # noqa: PLC0415

    operator = load_config(None, discover=False)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            if flag == "--config":
                parse_config(text, "FILE")
            else:
                layer_repository_config(operator, text, "FILE")
        except ConfigError:
            pass
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in inputs().items():
            path = Path(tmp) / "gateway-routes.yaml"
            path.write_text(text)
            for flag in ("--config", "--repository"):
                results = [
                    run([str(DEPTHGATE), "routes", "check", flag, str(path)])
                    for _ in range(opts.repeat)
                ]
                code, _, rss, line = results[-1]
                best = min(r[1] for r in results)
                parse = in_process(text, flag, opts.repeat)
                shown = line.replace(str(path), "FILE")[:60]
                print(
                    f"{name:15} {flag:13} {len(text.encode()):>8,} B  exit {code}  "
                    f"process {best * 1000:5.0f} ms  parse {parse * 1000:6.1f} ms  "
                    f"peak RSS {rss:3.0f} MB  {shown}"
                )


if __name__ == "__main__":
    main()
