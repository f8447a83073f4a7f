"""`depthgate smoke` against the fake upstream: the record of design §5."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from depthgate.gateway.smoke import RECORD_FIELDS
from tests.fakes.upstream import FakeUpstream, answer, error

KEY = "sk-smoke-canary-0123456789abcdef"
ROUTES = textwrap.dedent(
    """\
    version: 1
    gateway: {{base_url_env: GW_URL, api_key_env: GW_KEY, profile: {profile}}}
    routes:
      review-fast: {{send_model: fast-model, locked_model: gpt-4.1-mini, max_input_tokens: 1000,
                    max_output_tokens: 500, fallback: [review-deep]}}
      review-deep: {{send_model: deep-model, locked_model: claude-sonnet-4-6*,
                    max_input_tokens: 1000, max_output_tokens: 500}}
    tiers: {{fast: review-fast, logic: review-deep, deep: review-deep}}
    """
)


def smoke(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    profile: str = "litellm",
) -> tuple[int, dict[str, Any]]:
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(ROUTES.format(profile=profile))
    monkeypatch.setenv("GW_URL", fake.url)
    monkeypatch.setenv("GW_KEY", KEY)
    out = tmp_path / "smoke.json"
    code = main(["smoke", "--config", str(cfg), "--format", "json", "--out", str(out), *extra])
    doc = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == doc
    return code, doc


def test_a_gateway_that_accepts_any_alias_fails_the_smoke(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.script("fast-model", answer(headers={"x-litellm-model-name": "openai/gpt-4.1-mini"}))
    fake.script(
        "deep-model", answer(headers={"x-litellm-model-name": "claude-sonnet-4-6-20260101"})
    )
    code, doc = smoke(fake, tmp_path, capsys, monkeypatch)
    invalid = [r for r in fake.calls() if r.body["model"].startswith("depthgate-smoke-no-such-")]
    assert invalid  # the fake answers any model 200 by default, as a permissive proxy might
    assert set(doc) == set(RECORD_FIELDS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["tested_at"])
    assert doc["gateway_base_url"] == "REDACTED"
    assert doc["aliases_tested"] == ["review-fast", "review-deep"]
    fast, deep, bad = doc["results"]
    assert (fast["pass"], fast["http_status"], fast["response_model_field"]) == (
        True,
        200,
        "openai/gpt-4.1-mini",
    )
    assert deep["pass"] is True
    assert bad["alias"] == "invalid-alias"
    assert bad["pass"] is False  # a 200 for a made-up alias is a failure
    assert code == 3


def test_invalid_alias_must_be_unknown_alias_not_auth(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.script("fast-model", answer(headers={"x-litellm-model-name": "gpt-4.1-mini"}))
    fake.script("deep-model", answer(headers={"x-litellm-model-name": "claude-sonnet-4-6"}))
    fake.default = error(
        400,
        "/chat/completions: Invalid model name passed in model=x",
        type_="invalid_request_error",
    )
    code, doc = smoke(fake, tmp_path, capsys, monkeypatch)
    bad = doc["results"][-1]
    assert bad == {
        "alias": "invalid-alias",
        "http_status": 400,
        "error_parseable": True,
        "pass": True,
    }
    assert "invalid-alias: pass, error class unknown_alias" in doc["notes"]
    assert doc["overall_pass"] is True
    assert code == 0
    # one attempt each, fallbacks disabled, small max_tokens; nothing secret recorded
    assert len(fake.calls()) == 3
    assert all(
        r.body["disable_fallbacks"] is True and r.body["max_tokens"] == 16 for r in fake.calls()
    )
    assert KEY not in json.dumps(doc)

    fake.default = error(400, "No connected db.", type_="no_db_connection")
    code, doc = smoke(fake, tmp_path, capsys, monkeypatch)
    assert "invalid-alias: FAIL, error class auth" in doc["notes"]
    assert doc["results"][-1]["pass"] is False
    assert code == 3


def test_model_drift_and_check_auth(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.script("fast-model", answer(model="gpt-4o-mini"))
    fake.script("deep-model", answer(model="claude-sonnet-4-6"))
    fake.default = error(404, "The model does not exist", code="model_not_found")
    code, doc = smoke(fake, tmp_path, capsys, monkeypatch, "--check-auth", profile="openai")
    fast = doc["results"][0]
    assert fast["pass"] is False
    assert "review-fast: FAIL, error class model_mismatch" in doc["notes"]
    assert set(fast) == {
        "alias",
        "http_status",
        "response_model_field",
        "choices_present",
        "pass",
    }
    assert fast["response_model_field"] == "gpt-4o-mini"
    assert code == 3
    # the wrong-key request: the fake answers 200 to any key, so the check fails loudly
    assert doc["results"][-1]["alias"] == "review-fast (wrong key)"
    assert doc["results"][-1]["pass"] is False
    assert not any(r.body.get("disable_fallbacks") for r in fake.calls())  # not a LiteLLM profile
