"""The benchmark's upstream: an OpenAI-compatible ASGI app served by uvicorn in its own process.

    python bench/fake_asgi.py LATENCY_S

Answers every chat completion after LATENCY_S (an asyncio sleep, so any number of calls wait at
once) with the finding the test fake would give (tests.fakes.upstream.echo_findings). It prints
its URL on stdout and runs until stdin closes. The threaded test fake costs a few milliseconds
of Python per request, which at 16 calls in flight would measure the fake, not depthgate.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.upstream import Behavior, completion, echo_findings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def make_app(latency: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.loads(b"".join(chunks) or b"{}")
        model = str(body.get("model", ""))
        await asyncio.sleep(latency)
        content = json.dumps({"findings": echo_findings(body, model)})
        data = json.dumps(completion(model, Behavior(content=content))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    latency = float(sys.argv[1])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(make_app(latency), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
