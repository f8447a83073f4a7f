"""Finding and reading ``gateway-routes.yaml``: the edge where config text enters depthgate.

The core (:mod:`depthgate.core.routes`) parses and validates text; this module decides which file
that text comes from and reads it, for the CLI, the Action and the App alike.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from depthgate.core.errors import ConfigError
from depthgate.core.routes import (
    DEFAULT_CONFIG_NAMES,
    PACKAGED_CONFIG,
    LoadedConfig,
    packaged_text,
    parse_config,
)


def find_config(explicit: str | None, cwd: Path) -> tuple[str, str]:
    """The config to use and its text: the explicit path, then the default names, then the
    packaged default. Returns ``(source, text)``."""
    if explicit is not None:
        return explicit, _read(Path(explicit), explicit)
    for name in DEFAULT_CONFIG_NAMES:
        candidate = cwd / name
        if candidate.is_file():
            return name, _read(candidate, name)
    return "<packaged default>", packaged_text(PACKAGED_CONFIG)


def _read(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{shown}: no such file; pass --config PATH to an existing file"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a directory, expected a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot be read: {exc.strerror}") from None


def load_config(explicit: str | None = None, cwd: Path | None = None) -> LoadedConfig:
    source, text = find_config(explicit, cwd or Path.cwd())
    config = parse_config(text, source)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedConfig(config=config, source=source, sha256=digest)
