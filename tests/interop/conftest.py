"""A real LiteLLM proxy on 127.0.0.1, routed to the fake upstream (docs/platform.md, gateways).

The proxy comes from `.venv-gw` (created by `make gateway-venv`, which `make test` runs), or
from the executable named by ``DEPTHGATE_LITELLM``. Without it the interop tests are skipped on
a developer machine and fail under CI, where it must exist.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-interop-master-0123456789"


@dataclass(frozen=True)
class Proxy:
    url: str
    key: str
    upstream: FakeUpstream


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def litellm_executable() -> Path | None:
    explicit = os.environ.get("DEPTHGATE_LITELLM")
    candidate = Path(explicit) if explicit else ROOT / ".venv-gw" / "bin" / "litellm"
    return candidate if candidate.exists() else None


CONFIG = """\
model_list:
  - model_name: review-fast
    litellm_params: {{model: openai/gpt-4.1-mini, api_base: "{api}", api_key: sk-upstream-fake}}
  - model_name: review-deep
    litellm_params:
      {{model: openai/claude-sonnet-4-6, api_base: "{api}", api_key: sk-upstream-fake}}
  - model_name: review-flaky
    litellm_params: {{model: openai/flaky-model, api_base: "{api}", api_key: sk-upstream-fake}}
  - model_name: review-backup
    litellm_params: {{model: openai/gpt-4.1-mini, api_base: "{api}", api_key: sk-upstream-fake}}
general_settings:
  master_key: {key}
router_settings:
  num_retries: 0
  timeout: 3
  fallbacks: [{{review-flaky: [review-backup]}}]
litellm_settings:
  num_retries: 0
  request_timeout: 3
"""


@contextmanager
def start_litellm(exe: Path, workdir: Path) -> Iterator[Proxy]:
    """A LiteLLM proxy on a free port of 127.0.0.1 in front of a fresh fake upstream; both are
    stopped on exit. Used by the interop fixture and by scripts/record_cassettes.py."""
    upstream = FakeUpstream().start()
    config = workdir / "litellm.yaml"
    config.write_text(CONFIG.format(api=f"{upstream.url}/v1", key=MASTER_KEY))
    port = _free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no price-list download at start
        "LITELLM_TELEMETRY_DISABLED": "true",
        "LITELLM_LOG": "ERROR",
    }
    log_path = workdir / "litellm.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"litellm exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("litellm did not become ready within 90 s")
            time.sleep(0.5)  # polling a starting server, not a retry backoff
        yield Proxy(url=url, key=MASTER_KEY, upstream=upstream)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        upstream.stop()


@pytest.fixture(scope="session")
def litellm_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    exe = litellm_executable()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("LiteLLM proxy not installed: .ci/run (make test) creates .venv-gw")
        pytest.skip("LiteLLM proxy not installed: run `make gateway-venv`")
    with start_litellm(exe, tmp_path_factory.mktemp("litellm")) as proxy:
        yield proxy
