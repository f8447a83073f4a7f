"""Shared helpers of the webhook app's tests: signed deliveries built from the real payloads."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import uvicorn

from depthgate.app.httpguard import server_config
from depthgate.app.settings import AppSettings, ConnectionLimits
from depthgate.app.signature import sign

ROOT = Path(__file__).resolve().parents[2]

DATA = Path(__file__).resolve().parent.parent / "data" / "webhooks"
SECRET = "test-webhook-secret"  # noqa: S105 - a test value


@cache
def _example(name: str) -> dict[str, Any]:
    data = json.loads((DATA / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(_example(name))


def pr_payload(
    *,
    number: int = 7,
    head: str = "a" * 40,
    action: str = "opened",
    installation: int = 11,
    repo: str = "octo/repo",
    repo_id: int = 1001,
    updated_at: str = "2026-01-01T00:00:00Z",
    draft: bool = False,
) -> dict[str, Any]:
    """A real pull_request.opened example with the fields the app reads replaced."""
    p = example("pull_request/opened.with-organization.payload.json")
    p["action"] = action
    p["installation"] = {"id": installation, "node_id": "x"}
    p["repository"]["full_name"] = repo
    p["repository"]["id"] = repo_id
    p["repository"]["default_branch"] = "main"
    pr = p["pull_request"]
    pr["number"] = number
    pr["head"]["sha"] = head
    pr["updated_at"] = updated_at
    pr["draft"] = draft
    pr["state"] = "open"
    return p


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def headers(
    body: bytes,
    *,
    event: str = "pull_request",
    delivery: str | None = None,
    secret: str = SECRET,
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }


class LiveServer:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1, in a thread; stopped on exit."""

    def __init__(self, asgi: Any, limits: ConnectionLimits | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # the settings `depthgate serve` uses (app/httpguard.py), connection bounds included
        config = server_config(asgi, limits or ConnectionLimits(), host="127.0.0.1", port=self.port)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def worker(
    settings: AppSettings,
    tmp: Path,
    *,
    handlers: str = "tests.app.recording",
    args: tuple[str, ...] = ("--workers", "2"),
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """``depthgate worker`` as a process of its own (stopped with SIGTERM, else killed, on
    exit), with short leases, reaping and no backoff; its log goes to ``tmp``."""
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEPTHGATE_", "DG_TEST_"))},
        "PYTHONPATH": str(ROOT),
        "DEPTHGATE_APP_ID": settings.app_id or "",
        "DEPTHGATE_PRIVATE_KEY": settings.private_key or "",
        "DEPTHGATE_QUEUE_URL": settings.queue_url,
        "DEPTHGATE_JOB_LEASE_S": "1",
        "DEPTHGATE_REAP_INTERVAL_S": "0.2",
        "DEPTHGATE_RETRY_BACKOFF_S": "0",
        "DG_TEST_POSTS": str(tmp / "posts.db"),
        "DG_TEST_FLAG": str(tmp / "flag"),
        **env,
    }
    log = (tmp / f"worker-{time.monotonic_ns()}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "depthgate.app",
            "worker",
            "--handlers",
            handlers,
            *args,
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()
