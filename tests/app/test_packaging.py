"""The Dockerfile (hadolint clean, hash-locked, non-root, healthcheck, serve by default), the
docker-compose example (linted, not run: no Docker engine on CI) and the lock file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_essentials() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "-slim" in text
    assert "--require-hashes -r requirements/app.txt" in text
    assert "--no-deps" in text  # depthgate itself resolves nothing more
    assert "\nUSER 10001\n" in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    assert 'CMD ["depthgate", "serve"' in text


def test_compose_example() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"app", "worker", "redis"}
    anchor = doc["x-depthgate"]
    assert anchor["environment"]["DEPTHGATE_QUEUE_URL"] == "redis://redis:6379/0"
    assert services["app"]["command"][:2] == ["depthgate", "serve"]
    assert services["worker"]["command"][:2] == ["depthgate", "worker"]
    assert services["redis"]["healthcheck"]
    # no secret value is written into the file
    for value in anchor["environment"].values():
        assert str(value).startswith(("${", "redis://", "/run/secrets/"))


def test_compose_example_matches_the_compose_spec() -> None:
    checker = shutil.which("check-jsonschema") or str(
        Path(sys.executable).parent / "check-jsonschema"
    )
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
