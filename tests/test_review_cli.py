"""`depthgate review --dry-run` end to end against the fake upstream over real HTTP: every
gateway fault of threats.md ends in design §3's exit code and a handoff naming its class."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.upstream import Behavior, FakeUpstream, error

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pr.diff"
KEY = "sk-canary-gateway-key-0123456789abcdef"
ROUTES = textwrap.dedent(
    """\
    version: 1
    gateway:
      base_url_env: DEPTHGATE_GATEWAY_URL
      api_key_env: DEPTHGATE_GATEWAY_KEY
      profile: {profile}
      retry: {{attempts: 3, max_retry_after_s: 30, budget_s: 60}}
    routes:
      review-fast:
        send_model: fast-model
        max_input_tokens: 12000
        max_output_tokens: 1200
        timeout_s: {timeout}
      review-deep:
        send_model: deep-model
        max_input_tokens: 100000
        max_output_tokens: 4000
        timeout_s: {timeout}
        price: {{input_per_mtok: 3.0, output_per_mtok: 15.0}}
    tiers: {{fast: review-fast, logic: review-deep, deep: review-deep}}
    limits: {{max_comments: {max_comments}}}
    """
)


def run(
    fake_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    profile: str = "generic",
    timeout: float = 20,
    max_comments: int = 30,
    diff: Path = EXAMPLE,
    extra: tuple[str, ...] = (),
) -> tuple[int, dict[str, Any], str]:
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(ROUTES.format(profile=profile, timeout=timeout, max_comments=max_comments))
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake_url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", KEY)
    handoff = tmp_path / "handoff.json"
    code = main(
        [
            "review",
            "--dry-run",
            "--diff",
            str(diff),
            "--config",
            str(cfg),
            "--format",
            "json",
            "--handoff",
            str(handoff),
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    doc = json.loads(out)
    if code == 3:
        assert json.loads(handoff.read_text()) == doc["handoff"]
    return code, doc, err


def both(fake: FakeUpstream, *behaviors: Behavior) -> None:
    fake.script("fast-model", *behaviors)
    fake.script("deep-model", *behaviors)


# ---------------------------------------------------------------------------------------------


def test_a_complete_review_exits_0(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both(fake, Behavior(echo_finding=True))
    code, doc, _ = run(fake.url, tmp_path, capsys, monkeypatch)
    assert code == 0
    assert doc["handoff"] is None
    assert {c["alias"] for c in doc["comments"]} == {"review-fast", "review-deep"}
    assert all(
        c["body"].rstrip().endswith("-->") and "depthgate:fp=" in c["body"] for c in doc["comments"]
    )
    assert doc["usage"]["review-deep"]["cost"] > 0
    assert {h["state"] for h in doc["hunks"]} == {"reviewed", "skipped"}


def test_fail_on_exits_1(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both(fake, Behavior(echo_finding=True))  # findings are "medium"
    assert run(fake.url, tmp_path, capsys, monkeypatch, extra=("--fail-on", "medium"))[0] == 1
    assert run(fake.url, tmp_path, capsys, monkeypatch, extra=("--fail-on", "high"))[0] == 0


FAULTS = [
    ("401", "generic", error(401, "bad key"), "auth"),
    ("403", "generic", error(403, "forbidden"), "auth"),
    (
        "litellm-400-bad-alias",
        "litellm",
        error(
            400,
            "/chat/completions: Invalid model name passed in model=x",
            type_="invalid_request_error",
        ),
        "unknown_alias",
    ),
    (
        "litellm-400-bad-key",
        "litellm",
        error(400, "No connected db.", type_="no_db_connection"),
        "auth",
    ),
    (
        "404",
        "openai",
        error(404, "The model does not exist", code="model_not_found"),
        "unknown_alias",
    ),
    (
        "cometapi-503",
        "cometapi",
        error(503, "no available channel for group default and model x", code="model_not_found"),
        "unknown_alias",
    ),
    (
        "context-length",
        "generic",
        error(400, "maximum context length exceeded", code="context_length_exceeded"),
        "context_length",
    ),
    ("429-seconds", "generic", error(429, "slow", headers={"Retry-After": "1"}), "rate_limited"),
    ("429-ms", "generic", error(429, "slow", headers={"retry-after-ms": "10"}), "rate_limited"),
    (
        "429-date",
        "generic",
        error(429, "slow", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        "rate_limited",
    ),
    ("429-none", "generic", error(429, "slow"), "rate_limited"),
    ("500", "generic", error(500, "boom"), "server"),
    ("502", "generic", error(502, "bad gateway"), "server"),
    ("503", "generic", error(503, "unavailable"), "server"),
    ("truncated-stream", "generic", Behavior(truncated_stream=True), "bad_response"),
    ("html-200", "generic", Behavior(raw=b"<html>proxy error</html>"), "bad_response"),
    (
        "invalid-json",
        "generic",
        Behavior(content="Sure! Here are my findings: {oops"),
        "bad_response",
    ),
    (
        "bad-request",
        "generic",
        error(400, "temperature is not supported with this model"),
        "bad_request",
    ),
]


@pytest.mark.parametrize(
    ("profile", "behavior", "cls"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
def test_every_gateway_fault_exits_3_with_a_handoff(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    behavior: Behavior,
    cls: str,
) -> None:
    both(fake, behavior)
    code, doc, err = run(fake.url, tmp_path, capsys, monkeypatch, profile=profile)
    assert code == 3
    note = doc["handoff"]
    assert note["status"] == "failed"
    assert note["gateway"]["error_class"] == cls
    assert note["gateway"]["base_url"] == "REDACTED"
    assert note["next_action"]
    assert note["hunks"]["reviewed"] == 0
    assert note["hunks"]["failed"]
    assert doc["comments"] == []
    assert "depthgate: review failed" in err
    text = json.dumps(doc) + err
    assert KEY not in text
    if cls in ("auth", "unknown_alias"):
        assert note["gateway"]["retries"] == 0
        # one probe per alias, in flight together; no task after them was sent
        models = [r.body["model"] for r in fake.calls()]
        assert sorted(models) == ["deep-model", "fast-model"]


def test_connection_refused_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, doc, _ = run(f"http://127.0.0.1:{port}", tmp_path, capsys, monkeypatch)
    assert code == 3
    assert doc["handoff"]["gateway"]["error_class"] == "connection"


def test_read_hang_exits_3_as_timeout(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both(fake, Behavior(hang=True))
    code, doc, _ = run(fake.url, tmp_path, capsys, monkeypatch, timeout=0.2)
    assert code == 3
    assert doc["handoff"]["gateway"]["error_class"] == "timeout"


def test_partial_failure_keeps_what_completed(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.script("fast-model", Behavior(echo_finding=True))
    fake.script("deep-model", error(500, "boom"))
    code, doc, err = run(fake.url, tmp_path, capsys, monkeypatch)
    assert code == 3
    note = doc["handoff"]
    assert note["status"] == "failed_partial"
    assert note["hunks"]["reviewed"] >= 1
    assert {f["error_class"] for f in note["hunks"]["failed"]} == {"server"}
    assert [c["alias"] for c in doc["comments"]] == ["review-fast"]
    assert "review incomplete" in err


def test_one_repair_turn_rescues_an_unusable_answer(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both(fake, Behavior(content='```json\n{"findings": [,]}\n```'), Behavior(echo_finding=True))
    code, _, _ = run(fake.url, tmp_path, capsys, monkeypatch)
    assert code == 0
    repair = [r for r in fake.calls("fast-model") if len(r.body["messages"]) == 4]
    assert repair
    assert "could not be used" in repair[0].body["messages"][-1]["content"]


def test_review_without_dry_run_or_pr_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--diff", str(EXAMPLE)]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_missing_gateway_environment_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEPTHGATE_GATEWAY_URL", raising=False)
    code = main(["review", "--dry-run", "--diff", str(EXAMPLE)])
    assert code == 2
    assert "DEPTHGATE_GATEWAY_URL" in capsys.readouterr().err
