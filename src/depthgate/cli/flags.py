"""The review flags, from the command line or, for what it left out, the environment.

The Action passes its inputs as DEPTHGATE_* variables (never ``${{ }}`` inside a script), so the
same ``depthgate review`` runs in a workflow, in a shell and in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from depthgate.core.errors import UsageError
from depthgate.core.models import SEVERITY_ORDER
from depthgate.core.pipeline import ReviewOptions
from depthgate.core.placement import PlacementMode
from depthgate.core.routes import LoadedConfig
from depthgate.core.sanitize import SanitizePolicy
from depthgate.github.actions import SECRET_ENV

TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Flags:
    """What the command line said; the environment fills what it left out (the Action passes
    its inputs as DEPTHGATE_* variables)."""

    config: str | None = None
    fail_on: str | None = None
    max_comments: int | None = None
    dry_run: bool = False
    handoff: str | None = None
    placement: str = "diff_context"
    output_format: str = "text"

    def with_env(self, env: Mapping[str, str]) -> Flags:
        fail_on = self.fail_on or env.get("DEPTHGATE_FAIL_ON") or None
        if fail_on is not None and fail_on not in SEVERITY_ORDER:
            raise UsageError(
                f"fail-on {fail_on!r}: expected one of {', '.join(SEVERITY_ORDER)} "
                "(or leave it empty to never fail on findings)"
            )
        max_comments = self.max_comments
        raw = env.get("DEPTHGATE_MAX_COMMENTS", "")
        if max_comments is None and raw:
            if not raw.isdigit():
                raise UsageError(f"max-comments {raw!r}: expected a whole number, e.g. 30")
            max_comments = int(raw)
        return Flags(
            config=self.config or env.get("DEPTHGATE_CONFIG") or None,
            fail_on=fail_on,
            max_comments=max_comments,
            dry_run=self.dry_run or env.get("DEPTHGATE_DRY_RUN", "").lower() in TRUE,
            handoff=self.handoff,
            placement=self.placement,
            output_format=self.output_format,
        )


def secret_values(loaded: LoadedConfig, env: Mapping[str, str]) -> tuple[str, ...]:
    """The one list of values that must never be printed or posted -- what Actions masks before
    anything is printed, and what the sanitizer redacts: the gateway key and the secret headers
    the config names, the GitHub token, the App's webhook secrets and key. Known before the
    gateway settings are resolved, so a setup error cannot print a key it found. (Headers
    written in the config itself cannot be credentials: the config schema refuses those.)"""
    gw = loaded.config.gateway
    names = [*SECRET_ENV, gw.api_key_env, *gw.headers_env.values()]
    return tuple(dict.fromkeys(env[n] for n in names if n and len(env.get(n, "")) >= 8))


def review_options(flags: Flags, loaded: LoadedConfig, env: Mapping[str, str]) -> ReviewOptions:
    """The review's options for every surface (CLI, Action, App): placement, the comment cap,
    and every secret the sanitizer redacts."""
    return ReviewOptions(
        placement=PlacementMode(flags.placement),
        sanitize=SanitizePolicy(secrets=secret_values(loaded, env)),
        max_comments=(
            flags.max_comments
            if flags.max_comments is not None
            else loaded.config.limits.max_comments
        ),
    )
