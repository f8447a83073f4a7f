"""A fake OpenAI-compatible upstream, served over real HTTP on 127.0.0.1 (a free port).

Scriptable per model: each request for a model takes the next scripted :class:`Behavior` (the
last one repeats). Behaviors cover answers, delays, every error status with any headers, hangs,
truncated streams, non-JSON bodies and arbitrary content (invalid or fenced JSON, canary
secrets, mentions, images). Every request is recorded, so tests can assert what was sent --
and what was not.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behavior:
    status: int = 200
    content: str | None = '{"findings": []}'
    model: str | None = None  # the body's "model"; default: the requested model
    finish_reason: str | None = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # a JSON body to send instead of a chat completion
    raw: bytes | None = None  # bytes to send instead of anything else
    delay_s: float = 0.0
    hang: bool = False  # never answer (until the server stops)
    usage: tuple[int, int] = (100, 20)
    truncated_stream: bool = False  # a 200 SSE stream with an error event and no [DONE]
    # Answer with one finding on the first added line of the hunks under review, as a model
    # that read the prompt would: proves the whole path from prompt to placed comment.
    echo_finding: bool = False
    echo_count: int = 1  # with echo_finding: one finding on each of the first N added lines
    # Flag the first hunk under review for the deep alias ("escalate"), when the request
    # offers escalation (its system prompt has the escalation section)
    escalate: bool = False
    # Hostile answers (threats.md, "Connections"): the completion one byte every trickle_s
    # seconds (Content-Length announced, so every single read succeeds); or a 200 of
    # huge_bytes streamed without a Content-Length until the client hangs up
    trickle_s: float = 0.0
    huge_bytes: int = 0


def answer(*findings: dict[str, Any], **extra: Any) -> Behavior:
    """A 200 whose content is the JSON a model would write for these findings."""
    return Behavior(content=json.dumps({"findings": list(findings)}), **extra)


def error(
    status: int, message: str = "error", *, type_: str = "", code: Any = None, **extra: Any
) -> Behavior:
    body = {
        "error": {
            "message": message,
            "type": type_,
            "code": code if code is not None else str(status),
        }
    }
    return Behavior(status=status, body=body, **extra)


class _QuietServer(ThreadingHTTPServer):
    """Handler threads can outlive the test that started them (a hang released at stop, a
    client that went away): their errors must not land on a later test's captured stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class FakeUpstream:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Behavior]] = {}
        self.default = Behavior()  # for models nobody scripted
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent = 0  # by trickling and huge answers
        self.hung_up = 0  # answers the client stopped reading (connection closed early)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, model: str, *behaviors: Behavior) -> None:
        with self._lock:
            self.scripts[model] = list(behaviors)

    def calls(self, model: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests if model is None or (r.body or {}).get("model") == model
            ]

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, model: str) -> Behavior:
        with self._lock:
            queue = self.scripts.get(model)
            if not queue:
                return self.default
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._send(200, {"status": "ok"}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = None
                with fake._lock:
                    fake.requests.append(Recorded(self.path, dict(self.headers), body))
                model = str((body or {}).get("model", ""))
                b = fake._next(model)
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._serve(model, b, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _serve(self, model: str, b: Behavior, body: Any) -> None:
                if b.hang:
                    fake._stopping.wait(60)
                    return
                if b.delay_s:
                    time.sleep(b.delay_s)
                if b.trickle_s:
                    self._trickle(json.dumps(completion(model, b)).encode(), b.trickle_s)
                elif b.huge_bytes:
                    self._huge(b.huge_bytes)
                elif b.raw is not None:
                    self._send_bytes(b.status, b.raw, "text/html", b.headers)
                elif b.truncated_stream:
                    chunk = {"choices": [{"delta": {"content": "{"}, "index": 0}], "model": model}
                    err = {"error": {"message": "upstream timed out", "code": "408"}}
                    data = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(err)}\n\n".encode()
                    self._send_bytes(200, data, "text/event-stream", b.headers)
                elif b.body is not None:
                    self._send(b.status, b.body, b.headers)
                elif b.echo_finding or b.escalate:
                    found = echo_findings(body, model, b.echo_count)
                    answer: dict[str, Any] = {"findings": found if b.echo_finding else []}
                    system = str(((body or {}).get("messages") or [{}])[0].get("content", ""))
                    if b.escalate and "Escalation:" in system and found:
                        answer["escalate"] = [
                            {
                                "path": found[0]["path"],
                                "line": found[0]["line"],
                                "reason": "touches request handling; needs a deeper look",
                            }
                        ]
                    content = json.dumps(answer)
                    echoed = Behavior(**{**b.__dict__, "content": content, "echo_finding": False})
                    self._send(b.status, completion(model, echoed), b.headers)
                else:
                    self._send(b.status, completion(model, b), b.headers)

            def _trickle(self, data: bytes, every_s: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for i in range(len(data)):
                    if not self._write(data[i : i + 1]) or fake._stopping.wait(every_s):
                        return

            def _huge(self, total: int) -> None:
                self.close_connection = True  # no length: the end of the answer is the close
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                head = b'{"choices": [{"message": {"role": "assistant", "content": "'
                if not self._write(head):
                    return
                chunk = b"x" * 65536
                sent = len(head)
                while sent < total and not fake._stopping.is_set():
                    if not self._write(chunk):
                        return
                    sent += len(chunk)

            def _write(self, data: bytes) -> bool:
                """False once the client has hung up."""
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    with fake._lock:
                        fake.hung_up += 1
                    return False
                with fake._lock:
                    fake.bytes_sent += len(data)
                return True

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_bytes(
                self, status: int, data: bytes, ctype: str, headers: dict[str, str]
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler


_HUNK_HEAD = re.compile(r"^(?P<path>.+?) @@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_ADDED = re.compile(r"^R(?P<line>\d+) \+")


def echo_findings(body: Any, model: str, count: int = 1) -> list[dict[str, Any]]:
    """One finding on each of the first ``count`` added lines of the hunks under review."""
    messages = (body or {}).get("messages") or []
    text = str(messages[-1].get("content", "")) if messages else ""
    under_review = text.split("Context only", 1)[0]
    path = None
    found: list[dict[str, Any]] = []
    for line in under_review.splitlines():
        head = _HUNK_HEAD.match(line)
        if head:
            path = head.group("path")
            continue
        added = _ADDED.match(line)
        if added and path and len(found) < count:
            n = int(added.group("line"))
            found.append(
                {
                    "path": path,
                    "line": n,
                    "side": "RIGHT",
                    "start_line": None,
                    "severity": "medium",
                    "category": "bug",
                    "title": f"Check this line ({model})" + (f" #{n}" if count > 1 else ""),
                    "body": "The fake upstream flags the first added line of the hunk.",
                    "suggestion": None,
                }
            )
    return found


def completion(model: str, b: Behavior) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": b.model or model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": b.content},
                "finish_reason": b.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": b.usage[0], "completion_tokens": b.usage[1]},
    }


@contextmanager
def running(scripts: dict[str, Sequence[Behavior]] | None = None) -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    for model, behaviors in (scripts or {}).items():
        fake.script(model, *behaviors)
    try:
        yield fake
    finally:
        fake.stop()
