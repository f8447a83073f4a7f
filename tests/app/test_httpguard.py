"""The guard's header cap at the level of single socket reads (app/httpguard.py): the protocol
driven in-process with a transport that records what it was given, and the parser counted, so
that what reaches the parser is seen, not inferred. The real server under attack is in
test_hostile_connections.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from uvicorn.server import ServerState

from depthgate.app.httpguard import GuardedHttpProtocol, may_end_head, server_config
from depthgate.app.settings import ConnectionLimits

LIMITS = ConnectionLimits()
CAP = LIMITS.max_header_bytes
HEAD = b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Big: "


def head_ends_within(prev: bytes, data: bytes, within: int) -> bool:
    """Oracle: an empty line (LF, then LF or CR LF) ends at one of the first ``within`` bytes of
    ``data``."""
    whole = prev + data
    for i in range(max(len(prev), 1), min(len(whole), len(prev) + within)):
        if whole[i] != 0x0A:
            continue
        if whole[i - 1] == 0x0A or (whole[i - 1] == 0x0D and i >= 2 and whole[i - 2] == 0x0A):
            return True
    return False


_PIECES = st.lists(
    st.sampled_from([b"a", b":", b" ", b"\r", b"\n", b"\r\n", b"X-H: v"]), max_size=30
)


@given(prev=_PIECES, data=_PIECES, within=st.integers(1, 80))
def test_a_read_where_the_head_ends_may_end_it(
    prev: list[bytes], data: list[bytes], within: int
) -> None:
    before, read = b"".join(prev), b"".join(data)
    if head_ends_within(before, read, within):
        assert may_end_head(read, within)


@pytest.mark.parametrize(
    ("read", "may"),
    [
        (b"a" * 1000, False),
        (b"aaa\r\rX-More: bbb\r", False),  # a CR ends no line
        (b"aaa\r\nX-More: bbb\r\nX-Next: ", False),  # header lines, no empty line
        (b"aaa\r\n\nbody", True),
        (b"aaa\n\r\nbody", True),
        (b"\rbody", False),
        (b"aaa\r\n\r\nbody", True),
        (b"aaa\n\nbody", True),
        (b"\r\nbody", True),  # the read before ended with a header line's CR LF
        (b"\nbody", True),  # ... with CR LF CR, or LF
        (b"a" * 46 + b"\r\n\r\n", True),  # the end is the 50th byte
        (b"a" * 50 + b"\n\n", False),  # the end lies past the first 50 bytes
        (b"a\n" + b"a" * 60 + b"\n\n", False),
    ],
)
def test_what_may_end_a_head(read: bytes, may: bool) -> None:
    assert may_end_head(read, 50) is may


class Wire(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class CountingParser:
    """httptools' parser, with the bytes it was fed counted."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.fed = 0

    def feed_data(self, data: bytes) -> None:
        self.fed += len(data)
        self.parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """Never runs: feed() returns before the event loop would start a request's task."""


def feed(*reads: bytes) -> tuple[Wire, int]:
    """The reads into one guarded connection: what was written back, and the bytes parsed."""

    async def run() -> tuple[Wire, int]:
        config = server_config(_app, LIMITS, host="127.0.0.1", port=8080)
        config.load()
        cls = config.http_protocol_class
        assert isinstance(cls, type)
        assert issubclass(cls, GuardedHttpProtocol)
        protocol = cls(config=config, server_state=ServerState(), app_state={})
        parser = CountingParser(protocol.parser)
        protocol.parser = parser  # type: ignore[assignment]  # a proxy of the same interface
        wire = Wire()
        protocol.connection_made(wire)
        for read in reads:
            if wire.closed:
                break
            protocol.data_received(read)
        protocol.connection_lost(None)
        return wire, parser.fed

    return asyncio.run(run())


def test_a_read_over_the_cap_that_cannot_end_the_head_is_refused_unparsed() -> None:
    wire, fed = feed(HEAD + b"a" * (4 * CAP))
    assert wire.written.startswith(b"HTTP/1.1 431 ")
    assert b"request headers over 32768 bytes" in wire.written
    assert wire.closed
    assert fed == 0


def test_only_the_reads_under_the_cap_are_parsed() -> None:
    first = HEAD + b"a" * (CAP // 2)
    wire, fed = feed(first, b"a" * CAP, b"a" * CAP)
    assert wire.written.startswith(b"HTTP/1.1 431 ")
    assert fed == len(first)


def test_a_head_that_ends_past_the_cap_is_refused_unparsed() -> None:
    wire, fed = feed(HEAD + b"a" * (2 * CAP) + b"\r\n\r\n")
    assert wire.written.startswith(b"HTTP/1.1 431 ")
    assert fed == 0


def test_a_head_within_the_cap_is_parsed_whatever_the_read_holds_after_it() -> None:
    # a delivery's head and the first 256 KB of its body in one read: parsed, not refused
    read = HEAD + b"v\r\nContent-Length: 3000000\r\n\r\n" + b"{" * (8 * CAP)
    wire, fed = feed(read)
    assert b" 431 " not in wire.written
    assert fed == len(read)
