"""The gateway client against a fake upstream over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import textwrap
import time

import pytest

from depthgate.core.models import ErrorClass
from depthgate.core.ports import ChatReply, GatewayError
from depthgate.core.routes import RoutesConfig, parse_config
from depthgate.gateway.client import GatewaySettings, HttpGateway
from tests.fakes.upstream import Behavior, FakeUpstream, answer, error

CONFIG = textwrap.dedent(
    """\
    version: 1
    gateway:
      base_url_env: GW_URL
      api_key_env: GW_KEY
      profile: {profile}
      retry: {{attempts: 4, max_retry_after_s: 60, budget_s: 120}}
    routes:
      review-fast:
        send_model: review-fast
        locked_model: gpt-4.1-mini
        max_input_tokens: 12000
        max_output_tokens: 1200
        concurrency: 2
        timeout_s: {timeout}
        fallback: [review-backup]
      review-backup:
        send_model: review-backup
        max_input_tokens: 12000
        max_output_tokens: 1200
        token_param: max_completion_tokens
        temperature: null
        response_format: none
      review-deep:
        send_model: review-deep
        max_input_tokens: 100000
        max_output_tokens: 4000
    tiers: {{fast: review-fast, logic: review-deep, deep: review-deep}}
    """
)
MSG = [{"role": "user", "content": "hi"}]


def config(profile: str = "generic", timeout: float = 30) -> RoutesConfig:
    return parse_config(CONFIG.format(profile=profile, timeout=timeout), "test.yaml")


def call(
    fake: FakeUpstream,
    alias: str = "review-fast",
    profile: str = "generic",
    timeout: float = 30,
) -> ChatReply:
    cfg = config(profile, timeout)
    settings = GatewaySettings.from_config(
        cfg.gateway, {"GW_URL": fake.url, "GW_KEY": "sk-test-canary-0123456789"}
    )

    async def go() -> ChatReply:
        async with HttpGateway(settings, cfg.routes) as gw:
            return await gw.chat(alias, MSG, response_schema={"type": "object"})

    return asyncio.run(go())


def fail(fake: FakeUpstream, alias: str = "review-fast", profile: str = "generic") -> GatewayError:
    with pytest.raises(GatewayError) as info:
        call(fake, alias, profile)
    return info.value


def test_success_sends_the_route_parameters(fake: FakeUpstream) -> None:
    fake.script("review-fast", answer(model="gpt-4.1-mini-2025-04-14"))
    reply = call(fake)
    assert reply.content == '{"findings": []}'
    assert (reply.input_tokens, reply.output_tokens, reply.retries) == (100, 20, 0)
    assert reply.response_model == "gpt-4.1-mini-2025-04-14"
    (req,) = fake.calls()
    assert req.headers["Authorization"] == "Bearer sk-test-canary-0123456789"
    assert req.body["max_tokens"] == 1200
    assert req.body["temperature"] == 0
    assert req.body["response_format"]["type"] == "json_schema"
    assert req.body["response_format"]["json_schema"]["strict"] is True


def test_per_alias_parameters_are_not_guessed(fake: FakeUpstream) -> None:
    call(fake, alias="review-backup")
    (req,) = fake.calls()
    assert req.body["max_completion_tokens"] == 1200
    assert "max_tokens" not in req.body
    assert "temperature" not in req.body
    assert "response_format" not in req.body


@pytest.mark.parametrize(
    ("behavior", "profile", "cls"),
    [
        (error(401, "bad key", type_="auth_error"), "litellm", ErrorClass.AUTH),
        (error(403, "forbidden"), "generic", ErrorClass.AUTH),
        (error(400, "No connected db.", type_="no_db_connection"), "litellm", ErrorClass.AUTH),
        (
            error(
                400,
                "/chat/completions: Invalid model name passed in model=x",
                type_="invalid_request_error",
            ),
            "litellm",
            ErrorClass.UNKNOWN_ALIAS,
        ),
        (
            error(404, "The model does not exist", code="model_not_found"),
            "openai",
            ErrorClass.UNKNOWN_ALIAS,
        ),
        (
            error(
                503, "no available channel for group default and model x", code="model_not_found"
            ),
            "cometapi",
            ErrorClass.UNKNOWN_ALIAS,
        ),
    ],
)
def test_auth_and_unknown_alias_never_retry_and_never_fall_back(
    fake: FakeUpstream, behavior: Behavior, profile: str, cls: ErrorClass
) -> None:
    fake.script("review-fast", behavior)
    exc = fail(fake, profile=profile)
    assert exc.error_class is cls
    assert exc.retries == 0
    assert exc.exit_code == 3
    assert len(fake.calls()) == 1  # no retry, and nothing sent to the declared fallback
    assert "sk-test-canary" not in exc.message


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "2"},
        {"retry-after-ms": "1500"},
        {"Retry-After": email.utils.formatdate(time.time() + 5, usegmt=True)},
        {},
    ],
    ids=["seconds", "ms", "http-date", "none"],
)
def test_rate_limits_are_retried_honouring_retry_after(
    fake: FakeUpstream, headers: dict[str, str]
) -> None:
    ok = answer(model="gpt-4.1-mini")
    fake.script(
        "review-fast", error(429, "slow", headers=headers), error(429, "again", headers=headers), ok
    )
    reply = call(fake)
    assert reply.retries == 2
    assert len(fake.calls("review-fast")) == 3


def test_a_retry_after_beyond_the_cap_hands_off_instead_of_waiting(fake: FakeUpstream) -> None:
    fake.script("review-deep", error(429, "later", headers={"Retry-After": "3600"}))
    exc = fail(fake, alias="review-deep")
    assert exc.error_class is ErrorClass.RATE_LIMITED
    assert exc.retry_after_s == 3600
    assert len(fake.calls("review-deep")) == 1


def test_server_errors_retry_then_fall_back_in_order(fake: FakeUpstream) -> None:
    fake.script("review-fast", error(500, "boom"))
    fake.script("review-backup", answer())
    reply = call(fake)
    assert len(fake.calls("review-fast")) == 4  # the configured attempts
    assert reply.served_by == "review-backup"
    assert reply.alias == "review-fast"
    assert any("declared fallback review-backup served" in w for w in reply.warnings)


def test_failing_fallbacks_end_in_the_primary_error(fake: FakeUpstream) -> None:
    fake.script("review-fast", error(502, "bad gateway"))
    fake.script("review-backup", error(503, "down"))
    exc = fail(fake)
    assert exc.error_class is ErrorClass.SERVER
    assert exc.alias == "review-fast"
    assert exc.http_status == 502


def test_a_route_without_fallbacks_never_calls_another(fake: FakeUpstream) -> None:
    fake.script("review-deep", error(500, "boom"))
    fail(fake, alias="review-deep")
    assert {r.body["model"] for r in fake.calls()} == {"review-deep"}


def test_read_hang_is_a_timeout(fake: FakeUpstream) -> None:
    fake.script("review-deep", Behavior(hang=True))
    cfg = config("generic", 0.3)
    settings = GatewaySettings.from_config(cfg.gateway, {"GW_URL": fake.url, "GW_KEY": "k" * 10})
    routes = {
        **cfg.routes,
        "review-deep": cfg.routes["review-deep"].model_copy(update={"timeout_s": 0.3}),
    }

    async def go() -> None:
        async with HttpGateway(settings, routes) as gw:
            await gw.chat("review-deep", MSG)

    with pytest.raises(GatewayError) as info:
        asyncio.run(go())
    assert info.value.error_class is ErrorClass.TIMEOUT
    assert info.value.retries == 3


def test_connection_refused_is_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = config()
    settings = GatewaySettings.from_config(
        cfg.gateway, {"GW_URL": f"http://127.0.0.1:{port}", "GW_KEY": "k" * 10}
    )

    async def go() -> None:
        async with HttpGateway(settings, cfg.routes) as gw:
            await gw.chat("review-deep", MSG)

    with pytest.raises(GatewayError) as info:
        asyncio.run(go())
    assert info.value.error_class is ErrorClass.CONNECTION


@pytest.mark.parametrize(
    "behavior",
    [
        Behavior(raw=b"<html><body>502 proxy</body></html>"),
        Behavior(body={"choices": []}),
        Behavior(content=""),
        Behavior(finish_reason="length"),
        Behavior(finish_reason="content_filter"),
        Behavior(truncated_stream=True),
        Behavior(body={"error": {"message": "provider failed late"}, "choices": []}),
    ],
    ids=[
        "html-200",
        "empty-choices",
        "empty-content",
        "length",
        "content-filter",
        "truncated-stream",
        "error-in-200",
    ],
)
def test_a_200_is_not_always_a_success(fake: FakeUpstream, behavior: Behavior) -> None:
    fake.script("review-deep", behavior)
    exc = fail(fake, alias="review-deep")
    assert exc.error_class is ErrorClass.BAD_RESPONSE
    assert len(fake.calls()) == 2  # retried once


def test_context_length_is_not_retried(fake: FakeUpstream) -> None:
    fake.script(
        "review-deep",
        error(
            400,
            "This model's maximum context length is 8192 tokens",
            code="context_length_exceeded",
        ),
    )
    exc = fail(fake, alias="review-deep")
    assert exc.error_class is ErrorClass.CONTEXT_LENGTH
    assert len(fake.calls()) == 1


def test_model_mismatch_fails_or_warns(fake: FakeUpstream) -> None:
    fake.script("review-fast", answer(model="gpt-3.5-turbo"))
    exc = fail(fake)
    assert exc.error_class is ErrorClass.MODEL_MISMATCH
    assert exc.response_model == "gpt-3.5-turbo"
    assert len(fake.calls()) == 1  # no fallback either

    cfg = config()
    routes = {
        **cfg.routes,
        "review-fast": cfg.routes["review-fast"].model_copy(update={"on_model_mismatch": "warn"}),
    }
    settings = GatewaySettings.from_config(cfg.gateway, {"GW_URL": fake.url, "GW_KEY": "k" * 10})

    async def go() -> ChatReply:
        async with HttpGateway(settings, routes) as gw:
            return await gw.chat("review-fast", MSG)

    reply = asyncio.run(go())
    assert any("does not match locked_model" in w for w in reply.warnings)


def test_litellm_resolved_model_comes_from_its_header(fake: FakeUpstream) -> None:
    fake.script("review-fast", answer(headers={"x-litellm-model-name": "openai/gpt-4.1-mini"}))
    reply = call(fake, profile="litellm")  # body model is the alias; the header names the model
    assert reply.response_model == "openai/gpt-4.1-mini"


def test_concurrency_is_limited_per_alias(fake: FakeUpstream) -> None:
    fake.script("review-fast", answer(delay_s=0.2, model="gpt-4.1-mini"))
    cfg = config()
    settings = GatewaySettings.from_config(cfg.gateway, {"GW_URL": fake.url, "GW_KEY": "k" * 10})

    async def go() -> None:
        async with HttpGateway(settings, cfg.routes) as gw:
            await asyncio.gather(*(gw.chat("review-fast", MSG) for _ in range(6)))

    asyncio.run(go())
    assert fake.max_in_flight == 2  # routes.review-fast.concurrency


def test_missing_environment_is_a_config_error() -> None:
    from depthgate.core.errors import ConfigError  # noqa: PLC0415

    cfg = config()
    with pytest.raises(ConfigError, match="export GW_URL"):
        GatewaySettings.from_config(cfg.gateway, {})
    with pytest.raises(ConfigError, match="export GW_KEY"):
        GatewaySettings.from_config(cfg.gateway, {"GW_URL": "http://127.0.0.1:9"})
