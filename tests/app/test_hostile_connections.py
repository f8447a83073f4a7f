"""The webhook server under connection attacks (issue #10 item 5, threats.md "Connections"): the
real server with `depthgate serve`'s uvicorn settings (app/httpguard.py) on 127.0.0.1, raw
sockets as the attacker, signed deliveries as GitHub. Outcome first: the attacker is cut off,
memory stays flat, GitHub's deliveries keep getting 202."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from depthgate.app import App, JobResult
from depthgate.app.errors import AppConfigError
from depthgate.app.metrics import Metrics
from depthgate.app.queue import Queue
from depthgate.app.server import create_app
from depthgate.app.settings import AppSettings, ConnectionLimits
from depthgate.app.surface import REVIEW_EVENTS
from tests.app.helpers import LiveServer, body_of, headers, pr_payload

LIMITS = ConnectionLimits(header_timeout_s=1.0, body_timeout_s=1.5)
MB = 1024 * 1024


class Server:
    def __init__(self, settings: AppSettings) -> None:
        app = App()
        app.on(*REVIEW_EVENTS)(lambda ctx: JobResult("success", "ok"))
        self.queue = Queue(settings)
        self.live = LiveServer(create_app(app, self.queue, settings, Metrics()), LIMITS)
        self.host, self.port = "127.0.0.1", self.live.port

    def deliver(self, client: httpx.Client, n: int) -> int:
        body = body_of(pr_payload(number=n, head=f"{n:040x}"))
        return client.post("/webhook", content=body, headers=headers(body)).status_code

    def raw(self, first: bytes = b"") -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        if first:
            sock.sendall(first)
        return sock


@pytest.fixture
def server(settings: AppSettings) -> Iterator[Server]:
    s = Server(replace(settings, connections=LIMITS))
    with s.live:
        yield s
    s.queue.close()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The process's resident memory, sampled every 10 ms (the server runs in this process)."""

    def __init__(self) -> None:
        self.start = rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def closed_by_server(sock: socket.socket, within_s: float) -> bytes | None:
    """What the server said before closing the connection (b"" if nothing), or None if the
    connection was still open after ``within_s``."""
    sock.settimeout(within_s)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got
    except TimeoutError:
        return None
    finally:
        sock.close()


def big_header_attempt(server: Server, size: int, sent: list[int]) -> None:
    sock = server.raw(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Big: ")
    chunk = b"a" * 65536
    total = 0
    try:
        while total < size:
            sock.sendall(chunk)
            total += len(chunk)
    except OSError:
        pass  # the server closed the connection: the point
    finally:
        sent.append(total)
        sock.close()


def test_10_mb_headers_are_refused_at_the_cap_and_memory_stays_flat(server: Server) -> None:
    sent: list[int] = []
    with PeakRss() as rss:
        attackers = [
            threading.Thread(target=big_header_attempt, args=(server, 10 * MB, sent))
            for _ in range(20)
        ]
        for t in attackers:
            t.start()
        for t in attackers:
            t.join(timeout=30)
    assert len(sent) == 20
    # unbounded, the server held 20 x 10 MB; bounded, each attempt costs the cap and a read
    assert rss.peak - rss.start < 60 * MB
    assert max(sent) < 10 * MB  # every attempt was cut off before it was all sent


def test_an_oversized_header_gets_431(server: Server) -> None:
    sock = server.raw(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n")
    said = closed_by_server(sock, 5)
    assert said is not None
    assert said.startswith(b"HTTP/1.1 431 ")
    assert b"request headers over 32768 bytes" in said


def test_complete_headers_over_the_cap_in_one_read_get_431(server: Server) -> None:
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    said = closed_by_server(server.raw(head), 5)
    assert said is not None
    assert said.startswith(b"HTTP/1.1 431 ")
    assert server.queue.store.active_count() == 0


def test_too_many_headers_get_431(server: Server) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    sock = server.raw(b"POST /webhook HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    said = closed_by_server(sock, 5)
    assert said is not None
    assert said.startswith(b"HTTP/1.1 431 ")
    assert b"more than 100 request headers" in said


def test_an_idle_connection_is_closed_after_the_header_deadline(server: Server) -> None:
    started = time.monotonic()
    said = closed_by_server(server.raw(), 10)
    assert said is not None
    assert said.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < LIMITS.header_timeout_s + 2


def test_a_trickled_body_is_cut_at_the_body_deadline(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    body = body_of(pr_payload())
    head = "".join(f"{k}: {v}\r\n" for k, v in headers(body).items())
    sock = server.raw(
        f"POST /webhook HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
    )
    started = time.monotonic()
    cut = False
    for i in range(len(body)):
        try:
            sock.sendall(body[i : i + 1])
        except OSError:
            cut = True
            break
        if time.monotonic() - started > LIMITS.body_timeout_s + 3:
            break
        time.sleep(0.1)
    said = closed_by_server(sock, 3)
    assert cut or said is not None
    assert time.monotonic() - started < LIMITS.body_timeout_s + 4
    assert server.queue.store.active_count() == 0  # nothing half-read was stored
    assert "Exception in ASGI application" not in caplog.text


def test_a_kept_alive_connection_must_send_its_next_headers_in_time(server: Server) -> None:
    sock = server.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    # each byte used to cancel the keep-alive timer: one byte a while is a slowloris
    sock.sendall(b"P")
    started = time.monotonic()
    said = closed_by_server(sock, 10)
    assert said is not None
    assert time.monotonic() - started < LIMITS.header_timeout_s + 2


def slowloris(server: Server, stop: threading.Event, closed_after: list[float]) -> None:
    sock = server.raw(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    try:
        while not stop.is_set():
            sock.sendall(b"X")  # a header name that never ends
            if stop.wait(0.3):
                break
    except OSError:
        closed_after.append(time.monotonic() - started)
    finally:
        sock.close()


def test_50_slowloris_connections_are_cut_while_deliveries_get_202(server: Server) -> None:
    stop = threading.Event()
    closed_after: list[float] = []
    attackers = [
        threading.Thread(target=slowloris, args=(server, stop, closed_after)) for _ in range(50)
    ]
    for t in attackers:
        t.start()
    try:
        with httpx.Client(base_url=server.live.url, timeout=10) as client:
            statuses = [server.deliver(client, n) for n in range(1, 21)]
        assert statuses == [202] * 20
        deadline = time.monotonic() + LIMITS.header_timeout_s + 5
        while len(closed_after) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in attackers:
            t.join(timeout=10)
    assert len(closed_after) == 50  # every slow connection was closed by the server
    assert max(closed_after) < LIMITS.header_timeout_s + 3


def test_ordinary_deliveries_are_unaffected(server: Server) -> None:
    with httpx.Client(base_url=server.live.url, timeout=10) as client:
        assert [server.deliver(client, n) for n in range(1, 6)] == [202] * 5  # one kept-alive line


def test_a_large_delivery_in_one_write_is_not_mistaken_for_large_headers(server: Server) -> None:
    # headers and the first 256 KB of body arrive in one socket read: only the headers count
    payload = pr_payload()
    payload["pull_request"]["body"] = "x" * (3 * MB)
    body = body_of(payload)
    with httpx.Client(base_url=server.live.url, timeout=10) as client:
        answer = client.post("/webhook", content=body, headers=headers(body))
    assert answer.status_code == 202


def test_the_connection_limits_come_from_the_environment() -> None:
    env = {"DEPTHGATE_HEADER_TIMEOUT_S": "2.5", "DEPTHGATE_BODY_TIMEOUT_S": "9"}
    limits = AppSettings.from_env({**env, "DEPTHGATE_MAX_CONNECTIONS": "50"}).connections
    assert (limits.header_timeout_s, limits.body_timeout_s, limits.max_connections) == (2.5, 9, 50)
    with pytest.raises(AppConfigError, match="DEPTHGATE_BODY_TIMEOUT_S='inf': expected a finite"):
        AppSettings.from_env({"DEPTHGATE_BODY_TIMEOUT_S": "inf"})


def test_many_large_bodies_at_once_are_bounded_together_and_given_back(
    settings: AppSettings,
) -> None:
    # four slow senders announce 900 KB each and send 600 KB of it: 2.4 MB held, over a 2 MB
    # budget for all bodies at once, so the third or fourth is told to come back (503), and a
    # delivery arriving meanwhile too; once they are cut off (the body deadline) the budget is
    # whole again and GitHub's next delivery is queued
    limits = replace(LIMITS, body_timeout_s=1.0, max_body_bytes_in_flight=2 * MB)
    s = Server(replace(settings, connections=limits))
    with s.live:
        socks = []
        for _ in range(4):
            sock = s.raw(
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 921600\r\n\r\n"
            )
            sock.sendall(b" " * (600 * 1024))
            socks.append(sock)
        answers = [closed_by_server(sock, within_s=5.0) for sock in socks]
        assert all(a is not None for a in answers)  # every one was closed, none left hanging
        busy = [a for a in answers if a is not None and a.startswith(b"HTTP/1.1 503")]
        assert 1 <= len(busy) <= 2
        assert all(
            b"too many request bodies in flight" in a and b"retry-after: 5" in a for a in busy
        )
        with httpx.Client(base_url=f"http://{s.host}:{s.port}", timeout=10) as client:
            assert s.deliver(client, 1) == 202
    s.queue.close()
