"""Bounded gateway I/O (issue #10 item 5, threats.md "Connections"): hostile upstreams over real
HTTP on 127.0.0.1 -- one that trickles, one that answers 300 MB, Retry-After values JSON cannot
hold, JSON nested 200,000 deep -- each ends in its error class, in bounded time and memory."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from depthgate.core import jsonbound
from depthgate.core.findings import AnswerError, parse_answer
from depthgate.core.models import ErrorClass
from depthgate.core.ports import GatewayError
from depthgate.core.routes import RetryConfig, parse_config
from depthgate.gateway.client import GatewaySettings, HttpGateway
from tests.fakes.upstream import Behavior, FakeUpstream, answer, error
from tests.test_gateway import CONFIG, MSG
from tests.test_review_cli import both, run

MB = 1024 * 1024


def gateway_call(
    fake: FakeUpstream,
    *,
    timeout: float = 30,
    attempts: int = 4,
    extra_gateway: str = "",
) -> GatewayError:
    text = CONFIG.format(profile="generic", timeout=timeout)
    if extra_gateway:
        text = text.replace("  profile: generic\n", f"  profile: generic\n  {extra_gateway}\n")
    cfg = parse_config(text, "test.yaml")
    settings = GatewaySettings.from_config(cfg.gateway, {"GW_URL": fake.url, "GW_KEY": "k" * 12})
    settings = replace(settings, retry=RetryConfig(attempts=attempts, budget_s=120))
    # review-fast without its fallback: one route, so the calls counted are its attempts
    routes = {"review-fast": cfg.routes["review-fast"].model_copy(update={"fallback": []})}

    async def go() -> None:
        async with HttpGateway(settings, routes) as gw:
            await gw.chat("review-fast", MSG)

    with pytest.raises(GatewayError) as info:
        asyncio.run(go())
    return info.value


def eventually(check: object, within_s: float = 5.0) -> bool:
    assert callable(check)
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


def test_a_trickling_gateway_is_cut_at_timeout_s(fake: FakeUpstream) -> None:
    # every read returns a byte within 0.2 s, so no per-read timeout ever fires; the whole
    # answer would take about a minute
    fake.script("review-fast", Behavior(trickle_s=0.2))
    started = time.monotonic()
    exc = gateway_call(fake, timeout=1.0, attempts=2)
    elapsed = time.monotonic() - started
    assert exc.error_class is ErrorClass.TIMEOUT
    assert "within 1s" in str(exc)
    assert exc.retries == 1
    assert elapsed < 2 * 1.0 + 3.0  # two attempts of timeout_s each, and slack; not 2 minutes
    assert eventually(lambda: fake.hung_up >= 1)  # the client went away mid-answer


def test_a_300_mb_answer_is_abandoned_at_the_cap(fake: FakeUpstream) -> None:
    fake.script("review-fast", Behavior(huge_bytes=300 * MB))
    exc = gateway_call(fake)
    assert exc.error_class is ErrorClass.BAD_RESPONSE
    assert f"larger than {4 * MB} bytes" in str(exc)
    assert exc.retries == 1  # bad_response: one more try, then the handoff
    assert eventually(lambda: fake.hung_up >= 2)
    # two attempts read 4 MiB each; what the kernel buffers on both sides adds a few MB
    assert fake.bytes_sent < 40 * MB


def test_the_answer_cap_is_configurable_and_a_declared_length_is_refused_unread(
    fake: FakeUpstream,
) -> None:
    padded = answer(
        {
            "path": "a.py",
            "line": 1,
            "side": "RIGHT",
            "start_line": None,
            "severity": "low",
            "category": "style",
            "title": "t",
            "body": "x" * 5000,
            "suggestion": None,
        }
    )
    fake.script("review-fast", padded)
    exc = gateway_call(fake, extra_gateway="max_response_bytes: 2000")
    assert exc.error_class is ErrorClass.BAD_RESPONSE
    assert "larger than 2000 bytes (gateway.max_response_bytes)" in str(exc)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "inf"},
        {"Retry-After": "nan"},
        {"Retry-After": "1e400"},
        {"Retry-After": "-1"},
        {"retry-after-ms": "inf"},
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    ],
    ids=["inf", "nan", "1e400", "negative", "ms-inf", "year-9999"],
)
def test_an_unusable_retry_after_hands_off_at_once(
    fake: FakeUpstream, headers: dict[str, str]
) -> None:
    fake.script("review-fast", error(429, "slow down", headers=headers))
    exc = gateway_call(fake)
    assert exc.error_class is ErrorClass.RATE_LIMITED
    assert exc.retries == 0
    assert len(fake.calls("review-fast")) == 1
    assert exc.retry_after_s is not None
    json.dumps({"wait": exc.retry_after_s}, allow_nan=False)  # a number JSON can hold


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", ["inf", "nan", "1e400"])
def test_the_handoff_of_an_unusable_retry_after_is_strict_json(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    both(fake, error(429, "slow down", headers={"Retry-After": value, "retry-after-ms": value}))
    code, _doc, _ = run(fake.url, tmp_path, capsys, monkeypatch)
    assert code == 3
    note = _strict((tmp_path / "handoff.json").read_text())
    assert isinstance(note, dict)
    assert note["gateway"]["error_class"] == "rate_limited"
    assert note["gateway"]["retries"] == 0  # handed off: nothing waited for or retried
    assert isinstance(note["gateway"]["retry_after_s"], float)


def test_deeply_nested_model_json_is_a_bad_response_not_a_traceback(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both(fake, Behavior(content="[" * 200_000))
    code, doc, err = run(fake.url, tmp_path, capsys, monkeypatch)
    assert code == 3  # a gateway failure, not 1 ("findings at or above --fail-on")
    failed = doc["handoff"]["hunks"]["failed"]
    assert failed
    assert {f["error_class"] for f in failed} == {"bad_response"}
    assert "Traceback" not in err
    assert "RecursionError" not in err


@pytest.mark.parametrize("text", ["[" * 200_000, '{"findings": ' + "[" * 100 + "]" * 100 + "}"])
def test_parse_answer_refuses_deep_nesting_with_an_answer_error(text: str) -> None:
    with pytest.raises(AnswerError, match="nested deeper than 64 levels"):
        parse_answer(text)


def test_a_deeply_nested_envelope_is_a_bad_response(fake: FakeUpstream) -> None:
    fake.script("review-fast", Behavior(raw=b"[" * 200_000))
    exc = gateway_call(fake)
    assert exc.error_class is ErrorClass.BAD_RESPONSE
    assert "nested deeper than 64 levels" in str(exc)


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 64 + "]" * 64, False),
        ("[" * 65 + "]" * 65, True),
        ('{"a": "' + "[" * 500 + '"}', False),  # brackets in a string are text
        ('["\\"' + "[" * 500 + '"]', False),  # an escaped quote does not end the string
        ('{"findings": [' + ",".join(['{"x": [1, {"y": []}]}'] * 1000) + "]}", False),
        ("[" * 200_000, True),
    ],
    ids=["64", "65", "in-string", "escaped-quote", "wide", "200k"],
)
def test_depth_is_measured_outside_strings(text: str, deep: bool) -> None:
    assert jsonbound.too_deep(text) is deep
    if deep:
        with pytest.raises(jsonbound.JsonTooDeep):
            jsonbound.loads(text)
    else:
        assert jsonbound.loads(text) == json.loads(text)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def test_a_gzip_bomb_is_inflated_no_further_than_the_cap(fake: FakeUpstream) -> None:
    # 1 GiB of zeros in about 1 MB of gzip: each chunk the socket gives would inflate ~1,000-fold
    bomb = _gzip(b"\0" * (1024 * MB))
    assert len(bomb) < 2 * MB
    fake.script("review-fast", Behavior(raw=bomb, headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        exc = gateway_call(fake, attempts=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.error_class is ErrorClass.BAD_RESPONSE
    assert f"larger than {4 * MB} bytes" in str(exc)
    # what was kept (4 MiB) and one step past it, the bomb itself in the fake's memory: not 64 MB
    assert peak < 16 * MB, peak


def test_a_compressed_answer_is_read_and_an_unasked_encoding_is_bad_response(
    fake: FakeUpstream,
) -> None:
    body = json.dumps(
        {
            "id": "c1",
            "model": "gpt-4.1-mini",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"content": '{"findings": []}'}}
            ],
        }
    ).encode()
    fake.script("review-fast", Behavior(raw=_gzip(body), headers={"Content-Encoding": "gzip"}))
    text = CONFIG.format(profile="generic", timeout=30)
    cfg = parse_config(text, "test.yaml")
    settings = GatewaySettings.from_config(cfg.gateway, {"GW_URL": fake.url, "GW_KEY": "k" * 12})

    async def go() -> str:
        async with HttpGateway(settings, {"review-fast": cfg.routes["review-fast"]}) as gw:
            return (await gw.chat("review-fast", MSG)).content

    assert asyncio.run(go()) == '{"findings": []}'
    (call,) = fake.calls()
    assert call.headers.get("Accept-Encoding") == "gzip, deflate"
    fake.script("review-fast", Behavior(raw=body, headers={"Content-Encoding": "br"}))
    exc = gateway_call(fake, attempts=1)
    assert exc.error_class is ErrorClass.BAD_RESPONSE
    assert "encoded as 'br', which depthgate did not ask for" in str(exc)
    fake.script(
        "review-fast", Behavior(raw=b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"})
    )
    exc = gateway_call(fake, attempts=1)
    assert "gzip encoding is corrupt" in str(exc)
