"""Load test of ``depthgate serve``: signed deliveries at a fixed rate, over loopback only.

Starts ``depthgate serve`` (SQLite queue in a temporary directory, no-op review jobs) on a free
port of 127.0.0.1, sends ``--rate`` distinct pull_request deliveries per second for
``--duration`` seconds, then prints throughput, the p50/p95/p99 acknowledgement latency, the
non-2xx answers and the deliveries lost (answered 202 but absent from the queue's store).

    python bench/webhook_load.py                       # 200/s for 30 s (the issue's target)
    python bench/webhook_load.py --rate 50 --duration 5

Bounded: at most 1,000 deliveries a second, 120 seconds, 64 connections; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from depthgate.app.signature import sign

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "tests" / "data" / "webhooks" / "pull_request" / "opened.payload.json"
CONNECTIONS = 64
SECRET = "bench-webhook-secret"  # noqa: S105 - a throwaway value for a local server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _bodies(n: int) -> list[tuple[str, bytes]]:
    base = json.loads(PAYLOAD.read_text(encoding="utf-8"))
    base["installation"] = {"id": 1, "node_id": "x"}
    out = []
    for i in range(n):
        base["pull_request"]["number"] = i + 1
        base["pull_request"]["head"]["sha"] = f"{i + 1:040x}"
        out.append((str(uuid.uuid4()), json.dumps(base).encode()))
    return out


def _server_ack_buckets(metrics: str) -> list[tuple[str, float]]:
    """Shares of acknowledgements the server's handler finished within 0.05, 0.2 and 1 s: time
    in the handler only, so a gap to the sender's figures is time spent before the handler ran
    (the event loop, the sender's own connection pool)."""
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("depthgate_webhook_ack_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            counts[le] = float(line.rsplit(" ", 1)[1])
    total = counts.get("+Inf", 0.0) or 1.0
    return [(le, counts.get(le, 0.0) / total) for le in ("0.05", "0.2", "1.0")]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _requests(bodies: list[tuple[str, bytes]]) -> list[tuple[dict[str, str], bytes]]:
    """Each delivery's headers (signature included) and body, made before the clock starts."""
    return [
        (
            {
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": sign(SECRET, body),
                "Content-Type": "application/json",
            },
            body,
        )
        for delivery, body in bodies
    ]


async def _send(
    url: str, rate: float, bodies: list[tuple[str, bytes]], *, client: str = "raw"
) -> tuple[list[float], int, float]:
    """Send on schedule (delivery i at start + i / rate) from CONNECTIONS sender tasks on
    kept-alive connections. Headers and signatures are made before the clock starts, and no
    more requests wait than there are connections: a sender that held thousands of pending
    requests spent more CPU than the server (seen: the sender at 97% of a core, the server at
    25%, p99 over 60 s). Returns the latencies (request sent -> 202 read), the failures, and how
    far behind schedule a request went out at worst (the sender's own lag, reported apart).

    ``client``: ``raw`` (the default) writes each prepared request on its own connection with
    asyncio streams and reads the answer's status line, headers and body -- about a tenth of
    the CPU of ``httpx``, whose pool costs 2-6 ms per request here and grows with the requests
    in flight: on a 2-core machine an httpx sender that fell behind took the CPU the server
    needed and stayed behind (see README, Benchmarks). GitHub sends from its own machines."""
    prepared = _requests(bodies)
    if client == "httpx":
        return await _send_httpx(url, rate, prepared)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    wire = [
        b"POST /webhook HTTP/1.1\r\nHost: %s\r\nUser-Agent: depthgate-bench\r\n"
        b"Content-Length: %d\r\n%s\r\n%s"
        % (
            f"{host}:{port}".encode(),
            len(body),
            b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()),
            body,
        )
        for headers, body in prepared
    ]
    latencies: list[float] = []
    failures = 0
    lag = 0.0
    start = time.perf_counter()
    order = iter(enumerate(wire))

    async def sender() -> None:
        nonlocal failures, lag
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for i, request in order:
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            t0 = time.perf_counter()
            lag = max(lag, t0 - due)
            status = 0
            try:
                async with asyncio.timeout(10):
                    # a kept-alive connection the server closed while it was idle (uvicorn's
                    # keep-alive timeout) is opened again, as httpx's pool does; one the server
                    # closed as the request went out is retried once on a new connection
                    for reused in (conn is not None and not conn[0].at_eof(), False):
                        if conn is None or conn[0].at_eof():
                            conn = await asyncio.open_connection(host, int(port))
                        current, conn = conn, None
                        try:
                            conn, status = await _exchange(current, request)
                            break
                        except (ConnectionError, asyncio.IncompleteReadError):
                            current[1].close()
                            if not reused:
                                raise
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                if conn is not None:
                    conn[1].close()
                conn = None
            latencies.append(time.perf_counter() - t0)
            failures += status != 202
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    return latencies, failures, lag


async def _exchange(
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, int]:
    """One request on a kept-alive connection: the answer's status, and the connection if the
    server keeps it open."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    await reader.readexactly(int(fields.get("content-length", "0")))
    if fields.get("connection") == "close":
        writer.close()
        return None, status
    return conn, status


async def _send_httpx(
    url: str, rate: float, prepared: list[tuple[dict[str, str], bytes]]
) -> tuple[list[float], int, float]:
    """The same schedule through httpx's connection pool (``--client httpx``)."""
    latencies: list[float] = []
    failures = 0
    lag = 0.0
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        start = time.perf_counter()
        order = iter(enumerate(prepared))

        async def sender() -> None:
            nonlocal failures, lag
            for i, (headers, body) in order:
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                t0 = time.perf_counter()
                lag = max(lag, t0 - due)
                try:
                    r = await client.post("/webhook", content=body, headers=headers)
                    ok = r.status_code == 202
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                failures += not ok

        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    return latencies, failures, lag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second (200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--workers", type=int, default=2, help="serve's worker threads (2)")
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="the sender's HTTP client (raw)"
    )
    args = parser.parse_args(argv)
    rate = min(max(args.rate, 1.0), 1000.0)
    duration = min(max(args.duration, 1.0), 120.0)
    total = int(rate * duration)
    bodies = _bodies(total)
    with tempfile.TemporaryDirectory() as tmp:
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
        cmd = [
            sys.executable,
            "-m",
            "depthgate.app",
            "serve",
            "--port",
            str(port),
            "--handlers",
            "webhook_handlers",
            "--workers",
            str(args.workers),
            "--log-level",
            "WARNING",
        ]
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
                    print("depthgate serve did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            t0, cpu0 = time.perf_counter(), time.process_time()
            latencies, failures, lag = asyncio.run(_send(url, rate, bodies, client=args.client))
            elapsed, sender_cpu = time.perf_counter() - t0, time.process_time() - cpu0
            server_side = _server_ack_buckets(httpx.get(f"{url}/metrics", timeout=10).text)
        finally:
            server.terminate()
            server.wait(timeout=30)
        with closing(sqlite3.connect(db)) as conn:
            stored = {r[0] for r in conn.execute("select id from dg_delivery")}
    lost = sum(1 for d, _ in bodies if d not in stored)
    ms = [v * 1000 for v in latencies]
    print(
        f"depthgate serve, SQLite queue, {args.workers} worker thread(s); loopback; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"sent        {total} deliveries at {rate:.0f}/s target over {duration:.0f} s")
    print(f"throughput  {total / elapsed:.1f} deliveries/s acknowledged (wall {elapsed:.1f} s)")
    print(
        f"ack latency p50 {_percentile(ms, 50):.1f} ms  p95 {_percentile(ms, 95):.1f} ms  "
        f"p99 {_percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms"
    )
    within = ", ".join(f"{share:.1%} < {le} s" for le, share in server_side)
    print(f"server-side handler time (from /metrics): {within}")
    print(
        f"sender      {args.client} client, {sender_cpu / total * 1000:.2f} ms CPU per delivery; "
        f"requests went out at most {lag * 1000:.0f} ms behind schedule"
    )
    print(f"non-202     {failures}")
    print(f"lost        {lost}")
    return 0 if lost == 0 and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
