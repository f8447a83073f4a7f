"""The Dockerfile (hadolint) and the docker-compose example (the compose spec, no secret value in
it), linted, not run: no Docker engine on CI."""

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


def test_compose_example_writes_no_secret_value() -> None:
    environment = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-depthgate"][
        "environment"
    ]
    assert environment
    for value in environment.values():  # references to the environment or to secret files
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
