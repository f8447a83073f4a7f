"""``depthgate serve`` under attack: signed deliveries at a fixed rate while slowloris connections
and 10 MB header attempts run, over loopback only (issue #10, threats.md "Connections").

Starts ``depthgate serve`` as ``bench/webhook_load.py`` does (SQLite queue in a temporary
directory, no-op review jobs), then, for ``--duration`` seconds:

* GitHub: ``--rate`` distinct signed pull_request deliveries per second (webhook_load's sender);
* an attacker process (its own interpreter, at nice 19: an attacker's CPU is another machine's):
  ``--slow`` connections that send a header byte a second and never finish, each reopened as
  soon as the server closes it; ``--big`` connections at a time each trying to send 10 MB of
  headers, reconnecting at once when cut off.

Prints the acknowledgement latency of the deliveries (target p99 < 50 ms), the non-202 answers,
the deliveries lost, the server's peak resident memory (VmHWM of its process, target < 300 MB)
and what happened to the attacks.

    python bench/hostile_load.py                        # 200/s, 200 slow, 4 big, 30 s
    python bench/hostile_load.py --duration 10 --slow 50

Bounded: at most 1,000 deliveries a second, 120 seconds, 1,000 slow and 16 big connections;
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.webhook_load import (
    ROOT,
    SECRET,
    _bodies,
    _free_port,
    _key,
    _percentile,
    _send,
    _server_ack_buckets,
)

BIG_HEADER = 10 * 1024 * 1024


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status (VmRSS now, VmHWM the peak), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


async def _slow(port: int, until: float, stats: dict[str, int]) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        stats["slow_opened"] += 1

        async def trickle(w: asyncio.StreamWriter = writer) -> None:
            w.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
            while True:
                await w.drain()
                await asyncio.sleep(1.0)
                w.write(b"X")  # a header name that never ends

        task = asyncio.create_task(trickle())
        try:
            await asyncio.wait_for(reader.read(), timeout=max(0.1, until - time.monotonic()))
            stats["slow_cut"] += 1  # the server answered and closed
        except (TimeoutError, OSError):
            pass
        finally:
            task.cancel()
            writer.close()


async def _big(port: int, until: float, stats: dict[str, int]) -> None:
    chunk = b"a" * 65536
    while time.monotonic() < until:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        stats["big_attempts"] += 1
        sent = 0
        try:
            writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < BIG_HEADER and time.monotonic() < until:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), timeout=5)
                sent += len(chunk)
        except (TimeoutError, OSError):
            stats["big_cut"] += 1
        finally:
            stats["big_bytes_sent"] += sent
            writer.close()


def _attack(port: int, seconds: float, slow: int, big: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # An attacker's CPU is another machine's; here it shares the cores with the server and the
    # sender, so it yields to them rather than be measured as the server's slowness.
    os.nice(19)

    async def run() -> dict[str, int]:
        until = time.monotonic() + seconds
        stats = dict.fromkeys(
            ("slow_opened", "slow_cut", "big_attempts", "big_cut", "big_bytes_sent"), 0
        )
        await asyncio.gather(
            *(_slow(port, until, stats) for _ in range(slow)),
            *(_big(port, until, stats) for _ in range(big)),
        )
        return stats

    out.put(asyncio.run(run()))


@contextmanager
def _serve(tmp: str, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``depthgate serve`` on a free port, answering /healthz; stopped on exit."""
    db = Path(tmp) / "queue.db"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT / "src")]),
        "DEPTHGATE_WEBHOOK_SECRET": SECRET,
        "DEPTHGATE_APP_ID": "1",
        "DEPTHGATE_PRIVATE_KEY": _key(),
        "DEPTHGATE_QUEUE_URL": f"sqlite:///{db}",
    }
    cmd = [sys.executable, "-m", "depthgate.app", "serve", "--port", str(port)]
    cmd += ["--handlers", "webhook_handlers", "--workers", str(workers), "--log-level", "ERROR"]
    server = subprocess.Popen(cmd, env=env, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("depthgate serve did not start")
            time.sleep(0.1)
        yield server, url, db
    finally:
        server.terminate()
        server.wait(timeout=30)


class _PeakSampler(threading.Thread):
    """VmRSS of the server every 50 ms (VmHWM is the kernel's exact peak; this shows it is
    not an artefact of start-up)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            try:
                self.peak = max(self.peak, _rss(self.pid, "VmRSS"))
            except OSError:
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second (200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--slow", type=int, default=200, help="slowloris connections (200)")
    parser.add_argument("--big", type=int, default=4, help="10 MB header senders (4)")
    parser.add_argument("--workers", type=int, default=2, help="serve's worker threads (2)")
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="the sender's HTTP client (raw)"
    )
    args = parser.parse_args(argv)
    rate = min(max(args.rate, 1.0), 1000.0)
    duration = min(max(args.duration, 1.0), 120.0)
    slow = min(max(args.slow, 0), 1000)
    big = min(max(args.big, 0), 16)
    total = int(rate * duration)
    bodies = _bodies(total)
    with tempfile.TemporaryDirectory() as tmp, _serve(tmp, args.workers) as (server, url, db):
        port = int(url.rsplit(":", 1)[1])
        idle_rss = _rss(server.pid, "VmRSS")
        cpu_before = _cpu_s(server.pid)
        results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        # the attack starts a second before the deliveries and ends a second after them
        attacker = multiprocessing.Process(
            target=_attack, args=(port, duration + 2, slow, big, results)
        )
        attacker.start()
        sampler = _PeakSampler(server.pid)
        sampler.start()
        time.sleep(1.0)
        t0, cpu0 = time.perf_counter(), time.process_time()
        latencies, failures, lag = asyncio.run(_send(url, rate, bodies, client=args.client))
        elapsed, sender_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        server_side = _server_ack_buckets(httpx.get(f"{url}/metrics", timeout=10).text)
        attack = results.get(timeout=60)
        attacker.join(timeout=30)
        sampler.done.set()
        peak = _rss(server.pid, "VmHWM")
        cpu = _cpu_s(server.pid) - cpu_before
        load = os.getloadavg()[0]
        with closing(sqlite3.connect(db)) as conn:
            stored = {r[0] for r in conn.execute("select id from dg_delivery")}
    lost = sum(1 for d, _ in bodies if d not in stored)
    _report(
        {
            "workers": args.workers,
            "load": load,
            "total": total,
            "rate": rate,
            "duration": duration,
            "slow": slow,
            "big": big,
            "elapsed": elapsed,
            "ms": [v * 1000 for v in latencies],
            "server_side": server_side,
            "lag": lag,
            "client": args.client,
            "sender_cpu": sender_cpu,
            "cpu": cpu,
            "failures": failures,
            "lost": lost,
            "idle_rss": idle_rss,
            "peak": peak,
            "sampled_peak": sampler.peak,
            **attack,
        }
    )
    return 0 if lost == 0 and failures == 0 else 1


def _report(f: dict[str, Any]) -> None:
    mb = 1024 * 1024
    ms = f["ms"]
    print(
        f"depthgate serve, SQLite queue, {f['workers']} worker thread(s); loopback; "
        f"{os.cpu_count()} cores, load average {f['load']:.1f} at the end"
    )
    print(
        f"sent        {f['total']} signed deliveries at {f['rate']:.0f}/s "
        f"over {f['duration']:.0f} s"
    )
    print(f"attack      {f['slow']} slowloris connections, {f['big']} x 10 MB header senders")
    print(
        f"throughput  {f['total'] / f['elapsed']:.1f} deliveries/s acknowledged "
        f"(wall {f['elapsed']:.1f} s)"
    )
    print(
        f"ack latency p50 {_percentile(ms, 50):.1f} ms  p95 {_percentile(ms, 95):.1f} ms  "
        f"p99 {_percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms  (target p99 < 50 ms)"
    )
    within = ", ".join(f"{share:.1%} < {le} s" for le, share in f["server_side"])
    print(f"server-side handler time (from /metrics): {within}")
    print(
        f"sender      {f['client']} client, {f['sender_cpu'] / f['total'] * 1000:.2f} ms CPU per "
        f"delivery; requests went out at most {f['lag'] * 1000:.0f} ms behind schedule"
    )
    print(
        f"server CPU  {f['cpu']:.1f} s over the run ({f['cpu'] / (f['elapsed'] + 2):.0%} of a core)"
    )
    print(f"non-202     {f['failures']}")
    print(f"lost        {f['lost']}")
    print(
        f"server RSS  idle {f['idle_rss'] / mb:.0f} MB, peak {f['peak'] / mb:.0f} MB (VmHWM; "
        f"sampled {f['sampled_peak'] / mb:.0f} MB; target < 300 MB)"
    )
    print(
        f"slowloris   {f['slow_opened']} connections opened, {f['slow_cut']} closed by the server"
    )
    print(
        f"big headers {f['big_attempts']} attempts, {f['big_cut']} cut off; "
        f"{f['big_bytes_sent'] / mb:.1f} MB accepted by the socket in all"
    )


if __name__ == "__main__":
    sys.exit(main())
