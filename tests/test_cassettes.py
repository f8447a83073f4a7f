"""Replays of real LiteLLM proxy answers (recorded by scripts/record_cassettes.py).

record_mode="none": a request that is not in the cassette fails the test; nothing is sent.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
import vcr

from depthgate.core.models import ErrorClass
from depthgate.core.ports import ChatReply, GatewayError
from depthgate.core.routes import parse_config
from depthgate.gateway.client import GatewaySettings, HttpGateway

CASSETTES = Path(__file__).parent / "cassettes"
URL = "http://127.0.0.1:4999"  # the recorded proxy's address is rewritten to this one
ROUTES = textwrap.dedent(
    """\
    version: 1
    gateway:
      base_url_env: DEPTHGATE_GATEWAY_URL
      api_key_env: DEPTHGATE_GATEWAY_KEY
      profile: litellm
      retry: {attempts: 2, budget_s: 30}
    routes:
      review-fast: {send_model: review-fast, locked_model: gpt-4.1-mini, max_input_tokens: 12000,
                    max_output_tokens: 1200}
      review-deep: {send_model: review-deep, locked_model: claude-sonnet-4-6*,
                    max_input_tokens: 100000, max_output_tokens: 4000}
      review-nope: {send_model: review-nope, max_input_tokens: 1000, max_output_tokens: 100}
    tiers: {fast: review-fast, logic: review-deep, deep: review-deep}
    """
)
# case -> (alias, send a wrong key)
CASES = {
    "litellm_success": ("review-fast", False),
    "litellm_invalid_alias": ("review-nope", False),
    "litellm_wrong_key": ("review-fast", True),
    "litellm_rate_limited": ("review-deep", False),
}


def _rewrite_host(request):  # type: ignore[no-untyped-def]
    """Cassettes store the proxy under one fixed address, whatever port it had."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    parts = urlsplit(request.uri)
    request.uri = urlunsplit(parts._replace(netloc="127.0.0.1:4999"))
    return request


recorder = vcr.VCR(
    filter_headers=["authorization"],
    before_record_request=_rewrite_host,
    match_on=["method", "path", "body"],
    decode_compressed_response=True,
)


def replay(case: str) -> ChatReply:
    alias, wrong_key = CASES[case]
    cfg = parse_config(ROUTES, "cassettes.yaml")
    key = "sk-wrong-key-0000000000" if wrong_key else "sk-interop-master-0123456789"
    settings = GatewaySettings.from_config(
        cfg.gateway, {"DEPTHGATE_GATEWAY_URL": URL, "DEPTHGATE_GATEWAY_KEY": key}
    )

    async def go() -> ChatReply:
        async with HttpGateway(settings, cfg.routes) as gw:
            return await gw.chat(alias, [{"role": "user", "content": "Review nothing."}])

    with recorder.use_cassette(str(CASSETTES / f"{case}.yaml"), record_mode="none"):
        return asyncio.run(go())


def test_cassettes_hold_no_credentials() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert "sk-interop-master" not in text, path.name
        assert "sk-wrong-key" not in text, path.name
        assert "authorization" not in text.lower(), path.name


def test_success_reads_the_model_from_litellms_header() -> None:
    reply = replay("litellm_success")
    assert reply.response_model == "openai/gpt-4.1-mini"
    assert reply.content
    assert reply.request_id


def test_invalid_alias_and_wrong_key_are_told_apart() -> None:
    with pytest.raises(GatewayError) as bad_alias:
        replay("litellm_invalid_alias")
    with pytest.raises(GatewayError) as bad_key:
        replay("litellm_wrong_key")
    assert (bad_alias.value.http_status, bad_key.value.http_status) == (400, 400)
    assert bad_alias.value.error_class is ErrorClass.UNKNOWN_ALIAS
    assert bad_key.value.error_class is ErrorClass.AUTH


def test_rate_limit_is_retried_then_reported() -> None:
    with pytest.raises(GatewayError) as info:
        replay("litellm_rate_limited")
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retries == 1
