"""Shared fixtures. No test here reaches the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from depthgate.routes import LoadedConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def default_config() -> LoadedConfig:
    return load_config(str(ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"))
