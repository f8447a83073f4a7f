"""serve and worker refuse to start when they could not review: the gateway settings of the
server's config do not resolve, or the queue does not answer (a real Redis port nobody listens
on). /healthz lists what is missing."""

from __future__ import annotations

import argparse
import io
import socket
from pathlib import Path

import httpx
import pytest

from depthgate.app import App, preflight
from depthgate.app.cli import add_app_parsers, run_app_command
from depthgate.app.errors import AppConfigError
from depthgate.app.metrics import Metrics
from depthgate.app.queue import Queue
from depthgate.app.server import create_app
from depthgate.app.settings import AppSettings
from depthgate.configfile import load_config
from tests.app.helpers import LiveServer

KEY = "sk-canary-gateway-key-0123456789abcdef"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="depthgate")
    add_app_parsers(p.add_subparsers(dest="command"))
    return p


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    err = io.StringIO()
    args = parser().parse_args([*argv, "--log-level", "ERROR"])
    return run_app_command(args, env=env, out=io.StringIO(), err=err), err.getvalue()


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(rsa_keys: tuple[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        "DEPTHGATE_WEBHOOK_SECRET": "s3cret-value",
        "DEPTHGATE_APP_ID": "1",
        "DEPTHGATE_PRIVATE_KEY": rsa_keys[0],
        "DEPTHGATE_QUEUE_URL": f"sqlite:///{tmp_path}/q.db",
        "DEPTHGATE_GATEWAY_URL": "https://gateway.example",
        "DEPTHGATE_GATEWAY_KEY": KEY,
    }


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("unset", "says"),
    [
        ("DEPTHGATE_GATEWAY_KEY", "gateway: gateway key not set: export DEPTHGATE_GATEWAY_KEY"),
        ("DEPTHGATE_GATEWAY_URL", "gateway: gateway URL not set: export DEPTHGATE_GATEWAY_URL"),
    ],
)
def test_no_gateway_settings_no_start(
    env: dict[str, str], command: str, unset: str, says: str
) -> None:
    code, err = run([command], {**env, unset: ""})
    assert code == 2
    assert err.startswith("depthgate: error: cannot start: " + says), err
    assert err.count("\n") == 1  # one line
    assert KEY not in err


def test_a_gateway_url_without_a_scheme_is_named(env: dict[str, str]) -> None:
    code, err = run(["worker"], {**env, "DEPTHGATE_GATEWAY_URL": "gateway.example:4000"})
    assert code == 2
    assert "DEPTHGATE_GATEWAY_URL: the gateway URL has no scheme" in err


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_redis_no_start(env: dict[str, str], command: str) -> None:
    port = unused_port()
    url = f"redis://:hunter2-password@127.0.0.1:{port}/0"
    code, err = run([command], {**env, "DEPTHGATE_QUEUE_URL": url})
    assert code == 2
    assert f"queue: DEPTHGATE_QUEUE_URL: Redis at redis://127.0.0.1:{port} does not answer" in err
    assert "hunter2-password" not in err
    assert "Traceback" not in err


def test_a_handler_module_that_needs_no_gateway_starts_without_one(
    env: dict[str, str], redis_db: str
) -> None:
    """Only the review needs the gateway: preflight for another module checks the queue only
    (a reachable Redis here), so a worker with no gateway settings would start -- checked on
    the settings the runtime builds, without running the worker."""
    no_gateway = {k: v for k, v in env.items() if not k.startswith("DEPTHGATE_GATEWAY_")}
    settings = AppSettings.from_env({**no_gateway, "DEPTHGATE_QUEUE_URL": redis_db})
    queue = Queue(settings)
    try:
        preflight.require(settings, load_config(None), queue, gateway=False)
        with pytest.raises(AppConfigError, match="gateway: gateway URL not set"):
            preflight.require(settings, load_config(None), queue, gateway=True)
    finally:
        queue.close()


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        parser().parse_args([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_worker_help_lists_only_what_the_worker_reads(capsys: pytest.CaptureFixture[str]) -> None:
    worker = _help("worker", capsys)
    assert "DEPTHGATE_WEBHOOK_SECRET" not in worker
    assert "DEPTHGATE_GATEWAY_KEY" in worker
    assert "DEPTHGATE_QUEUE_URL" in worker
    assert "DEPTHGATE_WEBHOOK_SECRET" in _help("serve", capsys)


def test_healthz_says_what_is_missing(settings: AppSettings) -> None:
    queue = Queue(settings)
    missing = ["gateway: gateway key not set: export DEPTHGATE_GATEWAY_KEY"]
    try:
        with LiveServer(
            create_app(App(), queue, settings, Metrics(), missing=lambda: missing)
        ) as live:
            r = httpx.get(f"{live.url}/healthz", timeout=10)
        assert r.status_code == 503
        assert r.json() == {"status": "unhealthy", "missing": missing}
    finally:
        queue.close()
