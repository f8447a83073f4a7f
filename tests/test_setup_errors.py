"""Setup mistakes a new user makes, each answered with one clear message where they look (the
terminal here; Actions in test_action_e2e.py, serve/worker in tests/app/test_preflight.py): the
gateway URL without a scheme, the OpenAI SDK's ``/v1`` habit, and ``plan`` on an empty diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from depthgate.core.errors import ConfigError
from depthgate.gateway.endpoint import base_url
from tests.fakes.samples import routes
from tests.fakes.upstream import Behavior, FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pr.diff"
KEY = "sk-canary-gateway-key-0123456789abcdef"
CHAT = "/v1/chat/completions"


@pytest.mark.parametrize(
    ("url", "chat_path", "expected"),
    [
        ("https://gw.example", CHAT, "https://gw.example"),
        ("https://gw.example/", CHAT, "https://gw.example"),
        ("https://gw.example/v1", CHAT, "https://gw.example"),
        ("https://gw.example/v1/", CHAT, "https://gw.example"),
        ("http://127.0.0.1:4000/v1", CHAT, "http://127.0.0.1:4000"),
        ("https://gw.example/v1/chat/completions", CHAT, "https://gw.example"),
        ("https://openrouter.ai/api/v1", "/api/v1/chat/completions", "https://openrouter.ai"),
        ("https://openrouter.ai/api/v1", CHAT, "https://openrouter.ai/api"),
        ("https://gw.example/openai", "/chat/completions", "https://gw.example/openai"),
        ("https://gw.example/v2", CHAT, "https://gw.example/v2"),
        ("  https://gw.example/v1\n", CHAT, "https://gw.example"),
    ],
)
def test_the_base_url_and_the_chat_path_share_no_segment_twice(
    url: str, chat_path: str, expected: str
) -> None:
    assert base_url(url, chat_path, source="X") == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("gw.corp.example:4000", "no scheme; write it with http:// or https://"),
        ("gw.corp.example/v1", "no scheme"),
        ("ftp://gw.corp.example", "not a ftp URL"),
        ("https://", "without a host"),
        ("https://gw.corp.example/v1?key=sk-123", "query or fragment"),
    ],
)
def test_a_url_that_cannot_work_is_a_clear_error_without_its_value(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        base_url(url, CHAT, source="DEPTHGATE_GATEWAY_URL")
    assert info.value.message.startswith("DEPTHGATE_GATEWAY_URL: ")
    assert says in info.value.message
    assert "gw.corp.example" not in info.value.message  # the value may be a secret


def _review(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    from depthgate.cli.main import main  # noqa: PLC0415

    cfg = tmp_path / "routes.yaml"
    cfg.write_text(routes())
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", KEY)
    code = main(["review", "--dry-run", "--diff", str(EXAMPLE), "--config", str(cfg)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_v1_gateway_url_reaches_the_chat_endpoint_once(
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.default = Behavior()
    code, _, err = _review(fake.url + "/v1", tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert fake.requests
    assert {r.path for r in fake.requests} == {CHAT}


def test_a_gateway_url_without_a_scheme_stops_before_anything_is_sent(
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = fake.url.split("://", 1)[1]
    code, out, err = _review(host, tmp_path, monkeypatch, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("depthgate: error: DEPTHGATE_GATEWAY_URL: the gateway URL has no scheme")
    assert host not in err
    assert fake.requests == []
