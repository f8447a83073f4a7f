"""Shared fixtures. No test here reaches the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from depthgate.configfile import load_config
from depthgate.core.routes import LoadedConfig
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def default_config() -> LoadedConfig:
    return load_config(str(ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"))


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Retries keep their attempt counts but never wait (stamina's testing mode)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


# What GitHub Actions sets: a test suite that runs inside Actions must not write to the job's
# own outputs or summary, nor find the job's token.
ACTIONS_ENV = (
    "GITHUB_ACTIONS",
    "GITHUB_EVENT_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_API_URL",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "RUNNER_TEMP",
    "DEPTHGATE_CONFIG",
    "DEPTHGATE_FAIL_ON",
    "DEPTHGATE_MAX_COMMENTS",
    "DEPTHGATE_DRY_RUN",
    "DEPTHGATE_BOT_LOGIN",
)


@pytest.fixture(autouse=True)
def _not_in_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ACTIONS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    """A fake OpenAI-compatible upstream on a free port of 127.0.0.1, stopped after the test."""
    server = FakeUpstream().start()
    yield server
    server.stop()
