"""The webhook server's connections, bounded before the ASGI app sees a byte (threats.md,
"Connections"; design §10).

uvicorn's httptools protocol buffers request headers without limit (20 x 50 MB headers took
the server from 79 MB to 1,094 MB before any signature check could run) and has no deadline
for a request that has begun: a client that sends a byte every few seconds holds its
connection forever (each byte also cancels the keep-alive timer). :class:`GuardedHttpProtocol`
keeps the fast parser and adds, per connection:

* a header cap: more than ``max_header_bytes`` received before the headers are complete, or
  more than ``max_headers`` header lines → ``431`` and the connection is closed (memory per
  attacker stays at the cap plus one socket read; a read past the cap whose bytes within the
  cap hold no end of the head is refused before the parser copies it);
* a header deadline: the request line and headers complete within ``header_timeout_s`` of the
  connection (or of the first byte after an earlier request) → else ``408`` and closed;
* a body deadline: the whole body within ``body_timeout_s`` of the headers → else ``408`` and
  closed (the handler reading it sees a disconnect).

:func:`server_config` is the one place the server's uvicorn settings are made: ``depthgate
serve`` and the tests start the same server.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from depthgate.app.settings import ConnectionLimits

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def may_end_head(data: bytes, within: int) -> bool:
    """Whether a request's head could end within the first ``within`` bytes of ``data``, a read
    that follows the head's earlier reads: the empty line after the last header (LF LF or LF CR
    LF, which CR LF CR LF and CR LF LF hold too), or the end of one the read before began. Never
    false when the head ends there. Searched only up to the last LF there (one ``memrchr``):
    a 10 MB header's reads hold none past its first lines, and the parser would have copied
    each whole (up to 256 KB)."""
    end = data.rfind(b"\n", 0, within) + 1
    return (
        data.startswith((b"\n", b"\r\n"))
        or data.find(b"\n\n", 0, end) >= 0
        or data.find(b"\n\r\n", 0, end) >= 0
    )


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is being refused."""


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # between requests, or reading a request line and headers
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None

    # -- the deadline ------------------------------------------------------------------------

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        self._refuse(408, f"{what} not received within {seconds:g}s")

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        started = self.cycle is not None and self.cycle.response_started
        if not (started and not self.cycle.response_complete):
            # nothing else is being written on this connection: say why it is closed
            text = message.encode("ascii", "replace")
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, _REASONS[status], len(text), text)
            )
        self.transport.close()

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, "request headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            room = max(self.limits.max_header_bytes - self._head_bytes, 0)
            self._head_bytes += len(data)
            if self._deadline is None:  # the first byte of a next request on a kept-alive line
                self._arm(self.limits.header_timeout_s, "request headers")
            if len(data) > room and not may_end_head(data, room):
                # the head cannot end within the cap: refused before the parser copies the read
                # (a 10 MB header sender reconnects at once; parsing its reads was most of what
                # it cost the server)
                self._refuse(431, f"request headers over {self.limits.max_header_bytes} bytes")
                return
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request headers over {self.limits.max_header_bytes} bytes")

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers 400 to any parser error, including the _Refused raised below
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            super().send_400_response(msg)

    # -- parser callbacks --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (431, f"more than {self.limits.max_headers} request headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # the whole head can arrive in one read, past the byte count of data_received
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = (431, f"request headers over {self.limits.max_header_bytes} bytes")
            raise _Refused
        self._in_head = False
        self._arm(self.limits.body_timeout_s, "request body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        super().on_message_complete()


def server_config(asgi: Any, limits: ConnectionLimits, *, host: str, port: int) -> uvicorn.Config:
    """The webhook server's uvicorn settings (``depthgate serve`` and the tests)."""
    protocol = type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})
    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        http=protocol,
        ws="none",  # no WebSocket route: an Upgrade request is an ordinary request
        # A connection over this gets 503 once its headers are in: legitimate deliveries keep
        # connections open only for milliseconds, so only a flood reaches it, and the deadlines
        # above empty it within seconds.
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=5,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )
