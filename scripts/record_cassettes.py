"""Record the vcrpy cassettes of tests/test_cassettes.py from a real LiteLLM proxy.

    .venv/bin/python scripts/record_cassettes.py      (needs .venv-gw: make gateway-venv)

Starts the fake upstream and a LiteLLM proxy on 127.0.0.1 (the same setup as tests/interop),
sends the recorded calls through depthgate's own gateway client, and writes one cassette per
case to tests/cassettes/. Authorization headers are filtered out. The unit suite replays them
with record_mode="none", so CI needs neither the proxy nor the network for these tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from depthgate.core.ports import GatewayError  # noqa: E402
from depthgate.core.routes import parse_config  # noqa: E402
from depthgate.gateway.client import GatewaySettings, HttpGateway  # noqa: E402
from tests.fakes.upstream import answer, error  # noqa: E402
from tests.interop import conftest as interop  # noqa: E402
from tests.test_cassettes import CASES, CASSETTES, ROUTES, recorder  # noqa: E402


async def send(p: interop.Proxy, alias: str, key: str) -> None:
    cfg = parse_config(ROUTES, "cassettes.yaml")
    settings = GatewaySettings.from_config(
        cfg.gateway, {"DEPTHGATE_GATEWAY_URL": p.url, "DEPTHGATE_GATEWAY_KEY": key}
    )
    async with HttpGateway(settings, cfg.routes) as gw:
        with contextlib.suppress(GatewayError):  # failures are what some cassettes record
            await gw.chat(alias, [{"role": "user", "content": "Review nothing."}])


def main() -> int:
    CASSETTES.mkdir(exist_ok=True)
    exe = interop.litellm_executable()
    if exe is None:
        raise SystemExit("LiteLLM is not installed: run `make gateway-venv` first")
    with tempfile.TemporaryDirectory() as tmp, interop.start_litellm(exe, Path(tmp)) as p:
        p.upstream.script("gpt-4.1-mini", answer())
        p.upstream.script(
            "claude-sonnet-4-6", error(429, "slow down", headers={"Retry-After": "1"})
        )
        for name, (alias, wrong_key) in CASES.items():
            path = CASSETTES / f"{name}.yaml"
            path.unlink(missing_ok=True)
            key = "sk-wrong-key-0000000000" if wrong_key else p.key
            with recorder.use_cassette(str(path), record_mode="all"):
                asyncio.run(send(p, alias, key))
            print(f"recorded {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
