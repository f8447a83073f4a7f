"""depthgate against a real LiteLLM proxy (1.108.x) in front of the fake upstream."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from pathlib import Path

import pytest

from depthgate.cli.main import main
from depthgate.core.models import ErrorClass
from depthgate.core.ports import ChatReply, GatewayError
from depthgate.core.routes import parse_config
from depthgate.gateway.client import GatewaySettings, HttpGateway
from depthgate.gateway.smoke import RECORD_FIELDS
from tests.fakes.upstream import Behavior, answer, error
from tests.interop.conftest import Proxy

ROOT = Path(__file__).resolve().parents[2]
ROUTES = textwrap.dedent(
    """\
    version: 1
    gateway:
      base_url_env: DEPTHGATE_GATEWAY_URL
      api_key_env: DEPTHGATE_GATEWAY_KEY
      profile: litellm
      retry: {attempts: 3, budget_s: 60}
    routes:
      review-fast:
        send_model: review-fast
        locked_model: gpt-4.1-mini
        max_input_tokens: 12000
        max_output_tokens: 1200
        timeout_s: 20
      review-deep:
        send_model: review-deep
        locked_model: claude-sonnet-4-6*
        max_input_tokens: 100000
        max_output_tokens: 4000
        timeout_s: 20
      review-flaky:
        send_model: review-flaky
        locked_model: flaky-model
        max_input_tokens: 12000
        max_output_tokens: 1200
        timeout_s: 20
    tiers: {fast: review-fast, logic: review-deep, deep: review-deep}
    """
)
MSG = [{"role": "user", "content": "Review nothing."}]


def chat(proxy: Proxy, alias: str, key: str | None = None) -> ChatReply:
    cfg = parse_config(ROUTES, "interop.yaml")
    env = {"DEPTHGATE_GATEWAY_URL": proxy.url, "DEPTHGATE_GATEWAY_KEY": key or proxy.key}
    settings = GatewaySettings.from_config(cfg.gateway, env)

    async def go() -> ChatReply:
        async with HttpGateway(settings, cfg.routes) as gw:
            return await gw.chat(alias, MSG)

    return asyncio.run(go())


def chat_error(proxy: Proxy, alias: str, key: str | None = None) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        chat(proxy, alias, key)
    return info.value


def test_each_alias_answers_with_its_locked_model(litellm_proxy: Proxy) -> None:
    up = litellm_proxy.upstream
    up.script("gpt-4.1-mini", answer())
    up.script("claude-sonnet-4-6", answer())
    fast = chat(litellm_proxy, "review-fast")
    deep = chat(litellm_proxy, "review-deep")
    assert fast.response_model == "openai/gpt-4.1-mini"  # LiteLLM: in x-litellm-model-name
    assert deep.response_model == "openai/claude-sonnet-4-6"
    assert fast.request_id
    assert not fast.gateway_fallback


def test_invalid_alias_is_unknown_alias_not_auth(litellm_proxy: Proxy) -> None:
    cfg_alias = "review-fast"
    routes = ROUTES.replace("send_model: review-fast", "send_model: review-nope")
    cfg = parse_config(routes, "interop.yaml")
    env = {"DEPTHGATE_GATEWAY_URL": litellm_proxy.url, "DEPTHGATE_GATEWAY_KEY": litellm_proxy.key}
    settings = GatewaySettings.from_config(cfg.gateway, env)

    async def go() -> None:
        async with HttpGateway(settings, cfg.routes) as gw:
            await gw.chat(cfg_alias, MSG)

    with pytest.raises(GatewayError) as info:
        asyncio.run(go())
    assert info.value.error_class is ErrorClass.UNKNOWN_ALIAS
    assert info.value.http_status == 400
    assert info.value.retries == 0


def test_wrong_key_is_auth_although_litellm_answers_400(litellm_proxy: Proxy) -> None:
    exc = chat_error(litellm_proxy, "review-fast", key="sk-wrong-key-0000000000")
    assert exc.error_class is ErrorClass.AUTH
    assert exc.retries == 0


def test_upstream_rate_limit_is_rate_limited(litellm_proxy: Proxy) -> None:
    up = litellm_proxy.upstream
    up.script("claude-sonnet-4-6", error(429, "slow down", headers={"Retry-After": "1"}))
    exc = chat_error(litellm_proxy, "review-deep")
    assert exc.error_class is ErrorClass.RATE_LIMITED
    assert exc.retries == 2  # our attempts: 3 (LiteLLM's own retries are off)


def test_upstream_500_is_server(litellm_proxy: Proxy) -> None:
    up = litellm_proxy.upstream
    up.script("claude-sonnet-4-6", error(500, "boom"))
    exc = chat_error(litellm_proxy, "review-deep")
    assert exc.error_class is ErrorClass.SERVER


def test_upstream_silence_is_timeout(litellm_proxy: Proxy) -> None:
    up = litellm_proxy.upstream
    up.script("claude-sonnet-4-6", Behavior(delay_s=6))  # LiteLLM's timeout is 3 s
    exc = chat_error(litellm_proxy, "review-deep")
    assert exc.error_class is ErrorClass.TIMEOUT


def test_a_gateway_side_fallback_is_seen_and_caught_by_the_model_lock(litellm_proxy: Proxy) -> None:
    up = litellm_proxy.upstream
    up.script("flaky-model", error(500, "flaky"))
    up.script("gpt-4.1-mini", answer())
    exc = chat_error(litellm_proxy, "review-flaky")
    # LiteLLM served review-backup (gpt-4.1-mini) in place of flaky-model: depthgate notices.
    assert exc.error_class is ErrorClass.MODEL_MISMATCH
    assert exc.response_model is not None
    assert "gpt-4.1-mini" in exc.response_model


def test_review_of_a_sample_diff_through_the_proxy(
    litellm_proxy: Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    up = litellm_proxy.upstream
    up.script("gpt-4.1-mini", Behavior(echo_finding=True))
    up.script("claude-sonnet-4-6", Behavior(echo_finding=True))
    routes = tmp_path / "gateway-routes.yaml"
    routes.write_text(ROUTES)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", litellm_proxy.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", litellm_proxy.key)
    code = main(
        [
            "review",
            "--dry-run",
            "--diff",
            str(ROOT / "examples" / "pr.diff"),
            "--config",
            str(routes),
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["handoff"] is None
    assert {c["alias"] for c in out["comments"]} == {"review-fast", "review-deep"}
    assert all(c["model"] for c in out["comments"])
    assert out["usage"]["review-deep"]["calls"] >= 1
    assert {h["state"] for h in out["hunks"]} <= {"reviewed", "skipped"}


def test_smoke_against_the_proxy_passes_with_check_auth(
    litellm_proxy: Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    up = litellm_proxy.upstream
    up.script("gpt-4.1-mini", answer())
    up.script("claude-sonnet-4-6", answer())
    routes = tmp_path / "gateway-routes.yaml"
    routes.write_text(re.sub(r"  review-flaky:\n(    .*\n)+", "", ROUTES))  # only locked aliases
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", litellm_proxy.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", litellm_proxy.key)
    code = main(["smoke", "--check-auth", "--config", str(routes), "--format", "json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0, record
    assert set(record) == set(RECORD_FIELDS)
    assert record["overall_pass"] is True
    assert record["aliases_tested"] == ["review-fast", "review-deep"]
    by_alias = {r["alias"]: r for r in record["results"]}
    assert by_alias["invalid-alias"]["http_status"] == 400
    assert "invalid-alias: pass, error class unknown_alias" in record["notes"]
    assert "review-fast (wrong key): pass, error class auth" in record["notes"]
    assert all(
        set(r)
        <= {
            "alias",
            "http_status",
            "response_model_field",
            "choices_present",
            "error_parseable",
            "pass",
        }
        for r in record["results"]
    )
    assert by_alias["review-fast"]["response_model_field"] == "openai/gpt-4.1-mini"


def test_smoke_against_the_proxy_fails_on_a_broken_alias(
    litellm_proxy: Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    litellm_proxy.upstream.script("gpt-4.1-mini", answer())
    routes = tmp_path / "gateway-routes.yaml"
    broken = re.sub(r"  review-flaky:\n(    .*\n)+", "", ROUTES)
    broken = broken.replace("send_model: review-deep", "send_model: review-deep-not-on-the-proxy")
    routes.write_text(broken)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", litellm_proxy.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", litellm_proxy.key)
    code = main(["smoke", "--config", str(routes), "--format", "json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 3
    assert record["overall_pass"] is False
    deep = next(r for r in record["results"] if r["alias"] == "review-deep")
    assert deep["pass"] is False
    assert deep["http_status"] == 400
    assert "review-deep: FAIL, error class unknown_alias" in record["notes"]
