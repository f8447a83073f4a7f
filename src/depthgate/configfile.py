"""Finding and reading ``gateway-routes.yaml``: the edge where config text enters depthgate.

The core parses and validates text (:mod:`depthgate.core.routes` for the operator's file,
:mod:`depthgate.core.repoconfig` for a repository's); this module decides which text that is and
reads it, for the CLI, the Action and the App alike:

- the operator's file: ``--config`` (the workflow's ``config:`` input, ``depthgate serve
  --config``), else -- for local use, where the user is the operator -- the default names in the
  working directory, else the packaged default;
- a repository's file: :data:`REPOSITORY_CONFIG_PATHS`, in that order, read from GitHub at one
  commit (the PR's base in the Action, the default branch in the App) in one read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from depthgate.core.errors import ConfigError
from depthgate.core.guidance import MAX_GUIDELINE_BYTES, guideline_requests, guidelines_read
from depthgate.core.ports import BlobReader
from depthgate.core.repoconfig import merge, parse_repository_config
from depthgate.core.routes import (
    DEFAULT_CONFIG_NAMES,
    PACKAGED_CONFIG,
    LoadedConfig,
    packaged_text,
    parse_config,
)
from depthgate.core.source import Blob, BlobRequest
from depthgate.core.yamlsafe import MAX_CONFIG_BYTES

# One list for every surface: the App and the Action look here, in this order (the CLI too, in
# its working directory). The first file that exists is used.
REPOSITORY_CONFIG_PATHS = DEFAULT_CONFIG_NAMES
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_PLAIN_REF = re.compile(r"^[A-Za-z0-9._/-]{1,100}$")


def find_config(explicit: str | None, cwd: Path, *, discover: bool = True) -> tuple[str, str]:
    """The config to use and its text: the explicit path, then (``discover``) the default
    names in ``cwd``, then the packaged default. Returns ``(source, text)``."""
    if explicit is not None:
        return explicit, _read(Path(explicit), explicit)
    for name in DEFAULT_CONFIG_NAMES if discover else ():
        candidate = cwd / name
        if candidate.is_file():
            return name, _read(candidate, name)
    return "<packaged default>", packaged_text(PACKAGED_CONFIG)


def _read(path: Path, shown: str) -> str:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:  # refused before it is read into memory
            raise ConfigError(
                f"{shown}: over the {MAX_CONFIG_BYTES:,}-byte limit for a config file; a route "
                f"config is a few KB -- is this the right file?"
            )
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


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_config(
    explicit: str | None = None, cwd: Path | None = None, *, discover: bool = True
) -> LoadedConfig:
    """The operator's config. ``discover=False`` where the working directory is not the
    operator's (the Action's workspace holds the PR's files)."""
    source, text = find_config(explicit, cwd or Path.cwd(), discover=discover)
    return LoadedConfig(config=parse_config(text, source), source=source, sha256=_sha(text))


def layer_repository_config(operator: LoadedConfig, text: str, source: str) -> LoadedConfig:
    """A repository's config text over the operator's (:func:`depthgate.core.repoconfig.merge`)."""
    repo, warnings = parse_repository_config(text, source)
    effective, bounded = merge(operator.config, repo, source)
    return LoadedConfig(
        config=effective,
        source=f"{source} over {operator.source}",
        sha256=_sha(f"{operator.sha256}\n{_sha(text)}"),  # changes when either file does
        warnings=(*operator.warnings, *warnings, *bounded),
    )


def read_repository_config(
    reader: BlobReader, repository: str, rev: str, operator: LoadedConfig
) -> LoadedConfig:
    """The repository's config at ``rev`` over the operator's (or the operator's alone when the
    repository has none), with the repository's guideline files at ``rev``: every candidate
    config path and the guideline files in one read (a second only when the repository's
    config names guideline files the first did not ask for)."""
    blobs = dict(
        reader.read_blobs(
            [BlobRequest(path, rev=rev, path=path) for path in REPOSITORY_CONFIG_PATHS]
            + guideline_requests(operator.config.review, rev),
            max_bytes=MAX_GUIDELINE_BYTES,
        )
    )
    # a branch name may hold Markdown (`, <, @): messages show only plain ones
    shown_rev = rev[:12] if _HEX40.match(rev) else rev if _PLAIN_REF.match(rev) else "?"
    loaded = operator
    for path in REPOSITORY_CONFIG_PATHS:
        blob = blobs.get(path)
        source = f"{repository}@{shown_rev}:{path}"
        if blob is None or (blob.text is None and blob.problem == "not found"):
            continue
        if blob.text is None:
            raise ConfigError(
                f"{source}: cannot be used ({blob.problem}); a route config is a UTF-8 YAML "
                f"file of a few KB"
            )
        loaded = layer_repository_config(operator, blob.text, source)
        break
    return read_guidelines(reader, rev, loaded, shown_rev=shown_rev, read=blobs)


def read_guidelines(
    reader: BlobReader,
    rev: str,
    loaded: LoadedConfig,
    *,
    shown_rev: str | None = None,
    read: Mapping[str, Blob] | None = None,
) -> LoadedConfig:
    """``loaded`` with the guideline files its ``review.guidelines`` names, as they are at
    ``rev`` (``read``: what an earlier read of the same commit already holds); one that exists
    but cannot be used is left out with a warning (:func:`depthgate.core.guidance.
    guidelines_read`)."""
    review = loaded.config.review
    have = dict(read or {})
    missing = [r for r in guideline_requests(review, rev) if r.key not in have]
    if missing:
        have.update(reader.read_blobs(missing, max_bytes=MAX_GUIDELINE_BYTES))
    at = shown_rev if shown_rev is not None else rev[:12]
    found, warnings = guidelines_read(review, have, at=at)
    if not found and not warnings:
        return loaded
    return replace(loaded, guidelines=tuple(found), warnings=(*loaded.warnings, *warnings))
