"""A repository's layer of the config: what it may choose, and the one merge (design §10).

Two parties write a ``gateway-routes.yaml``. The **operator** -- the App's server (``--config``,
its environment), the workflow (its ``config:`` input, inputs and secrets), the CLI user's own
file -- owns the gateway connection (URL, key and its variable, headers and their variables,
profile, TLS, retries and timeouts: every environment variable depthgate may read), the routes
(which models are paid for) and the maxima of every budget. Its file is a full
:class:`~depthgate.core.routes.RoutesConfig` (:data:`OperatorConfig`).

A **repository** -- the file on the PR's base commit (Action) or the default branch (App) -- is
written by whoever can push there, and may choose review behaviour only: a
:class:`RepositoryConfig`. :func:`merge` lays it over the operator's config and is the only way
the two meet: the gateway and the routes of the result *are* the operator's objects, so nothing
a repository writes can reach the connection.

What a repository writes that is the operator's (``gateway:``, ``routes:``) is ignored, with a
warning that names the key and never its value -- repositories that copied the packaged default
keep being reviewed, and the warning tells them what to delete. Values past the operator's
bounds are lowered to them, also with a warning. Anything else that is wrong (an unknown key, a
bad type, a regex that does not compile, hostile YAML) is a :class:`ConfigError`, as for any
config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from depthgate.core.errors import ConfigError
from depthgate.core.guidance import ReviewGuidance
from depthgate.core.routes import (
    ClassifyConfig,
    Escalation,
    Limits,
    RoutesConfig,
    Tier,
    Tiers,
    _merge_rules,
    _reject_secrets,
    format_validation_error,
)
from depthgate.core.yamlsafe import load_yaml

OperatorConfig = RoutesConfig  # the operator writes the whole file; the name says whose it is

# Top-level keys that only the operator sets; a repository's are ignored with a warning.
OPERATOR_KEYS: Mapping[str, str] = {
    "gateway": (
        "a repository's config cannot choose the gateway connection (URL, key, headers, "
        "profile, TLS, retries) nor which environment variables are read; the operator's "
        "settings are used. Delete the `gateway:` section from this file"
    ),
    "routes": (
        "a repository's config cannot define routes (the aliases and the models they send); "
        "the operator's routes are used. Delete `routes:`; `tiers:` may name the operator's "
        "aliases"
    ),
}


class _Choice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepositoryTiers(_Choice):
    """Depth tier -> one of the operator's route aliases; an unset tier keeps the operator's."""

    fast: str | None = None
    logic: str | None = None
    deep: str | None = None


class RepositoryLimits(_Choice):
    """Per-PR budgets, each at most the operator's (a higher value is lowered to it)."""

    max_hunks: PositiveInt | None = None
    max_comments: PositiveInt | None = None
    max_tokens_per_alias: dict[str, PositiveInt] = Field(default_factory=dict)
    logic_context_tokens: int | None = Field(default=None, ge=0)
    deep_context_tokens: int | None = Field(default=None, ge=0)


class RepositoryEscalation(_Choice):
    enabled: bool | None = None  # may switch escalation off; on only where the operator has it on
    max_hunks: int | None = Field(default=None, ge=0)


class RepositoryConfig(_Choice):
    """What a repository's ``gateway-routes.yaml`` may set: review behaviour only.

    A key repositories may set is a field of this model (and of RoutesConfig, which carries it
    to the review).
    """

    version: Literal[1] = 1
    tiers: RepositoryTiers = Field(default_factory=RepositoryTiers)
    classify: dict[str, Any] = Field(
        default_factory=dict,
        description="rules merged by name over the operator's classify: (same keys; "
        "`depthgate routes schema` shows them); [] or null switches a rule off",
    )
    limits: RepositoryLimits = Field(default_factory=RepositoryLimits)
    escalation: RepositoryEscalation = Field(default_factory=RepositoryEscalation)
    # instructions, guidelines and skip rules: the repository's own (none of them sends anything
    # anywhere); when set, they replace the operator's defaults as a whole
    review: ReviewGuidance | None = None


class _Classify(BaseModel):
    classify: ClassifyConfig  # validated under its key, so errors say classify.<rule>...


def parse_repository_config(text: str, source: str) -> tuple[RepositoryConfig, list[str]]:
    """Validate a repository's YAML text; returns the config and the warnings for the
    operator's keys it set (which are dropped here, before anything reads them)."""
    data = load_yaml(text, source)
    if data is None:  # an empty file chooses nothing
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of review settings (tiers, classify, limits, "
            f"escalation, review) at the top level, got {type(data).__name__}"
        )
    warnings = [
        f"{source}: {key}: ignored: {why}." for key, why in OPERATOR_KEYS.items() if key in data
    ]
    chosen = {k: v for k, v in data.items() if k not in OPERATOR_KEYS}
    _reject_secrets(chosen, "", source)
    classify = chosen.get("classify")
    if classify is not None and not isinstance(classify, Mapping):
        raise ConfigError(f"{source}: classify: expected a mapping of rules")
    try:
        config = RepositoryConfig.model_validate({**chosen, "classify": classify or {}})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None
    return config, warnings


def merge(
    operator: OperatorConfig, repo: RepositoryConfig, source: str
) -> tuple[RoutesConfig, list[str]]:
    """The effective config: the operator's, with the repository's choices where its bounds
    allow them. Returns it and a warning for every choice that was lowered or dropped."""
    warnings: list[str] = []
    classify = operator.classify
    if repo.classify:
        merged = _merge_rules(operator.classify.model_dump(), repo.classify)
        try:
            classify = _Classify.model_validate({"classify": merged}).classify
        except ValidationError as exc:
            raise ConfigError(f"{source}: {format_validation_error(exc)}") from None
    # model_copy keeps the operator's gateway and routes objects as they are: the repository's
    # text never reaches them
    effective = operator.model_copy(
        update={
            "tiers": _tiers(operator, repo.tiers, source, warnings),
            "limits": _limits(operator, repo.limits, source, warnings),
            "escalation": _escalation(operator.escalation, repo.escalation, source, warnings),
            "classify": classify,
            "review": repo.review if repo.review is not None else operator.review,
        }
    )
    return effective, warnings


def _tiers(
    operator: OperatorConfig, chosen: RepositoryTiers, source: str, warnings: list[str]
) -> Tiers:
    tiers = operator.tiers
    for tier in Tier:
        alias = getattr(chosen, tier.value)
        if alias is None:
            continue
        if alias in operator.routes:
            tiers = tiers.model_copy(update={tier.value: alias})
        else:  # the alias itself is the repository's text: not repeated
            warnings.append(
                f"{source}: tiers.{tier.value}: not one of the operator's routes "
                f"({', '.join(sorted(operator.routes))}); the operator's "
                f"{operator.tiers.alias(tier)} is used"
            )
    return tiers


def _bounded(value: int, bound: int, key: str, source: str, warnings: list[str]) -> int:
    if value > bound:
        warnings.append(
            f"{source}: {key}: {value} is above the operator's maximum {bound}; {bound} is used"
        )
    return min(value, bound)


def _limits(
    operator: OperatorConfig, chosen: RepositoryLimits, source: str, warnings: list[str]
) -> Limits:
    ceiling = operator.limits
    update: dict[str, Any] = {}
    for key in ("max_hunks", "max_comments", "logic_context_tokens", "deep_context_tokens"):
        value = getattr(chosen, key)
        if value is not None:
            update[key] = _bounded(value, getattr(ceiling, key), f"limits.{key}", source, warnings)
    per_alias = dict(ceiling.max_tokens_per_alias)
    unknown = 0
    for alias, value in chosen.max_tokens_per_alias.items():
        if alias not in operator.routes:
            unknown += 1
            continue
        bound = ceiling.max_tokens_per_alias.get(alias)
        key = f"limits.max_tokens_per_alias.{alias}"
        per_alias[alias] = value if bound is None else _bounded(value, bound, key, source, warnings)
    if unknown:
        warnings.append(
            f"{source}: limits.max_tokens_per_alias: {unknown} entries name no route of the "
            f"operator's ({', '.join(sorted(operator.routes))}); ignored"
        )
    update["max_tokens_per_alias"] = per_alias
    return ceiling.model_copy(update=update)


def _escalation(
    ceiling: Escalation, chosen: RepositoryEscalation, source: str, warnings: list[str]
) -> Escalation:
    escalation = ceiling
    if chosen.enabled is not None:
        if chosen.enabled and not ceiling.enabled:
            warnings.append(
                f"{source}: escalation.enabled: the operator has escalation switched off; "
                f"it stays off"
            )
        else:
            escalation = escalation.model_copy(update={"enabled": chosen.enabled})
    if chosen.max_hunks is not None:
        key = "escalation.max_hunks"
        most = _bounded(chosen.max_hunks, ceiling.max_hunks, key, source, warnings)
        escalation = escalation.model_copy(update={"max_hunks": most})
    return escalation


def repository_schema() -> dict[str, Any]:
    """The JSON Schema of a repository's gateway-routes.yaml (``routes schema --repository``)."""
    schema = RepositoryConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gateway-routes.yaml (a repository's: review behaviour only)"
    schema["description"] = (
        "gateway: and routes: are the operator's: a repository's are ignored, with a warning"
    )
    return schema
