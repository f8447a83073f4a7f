"""``gateway-routes.yaml``: load, validate, and describe the route config (design §2).

This file is the one place where model identifiers live. Loading is strict: unknown keys,
non-positive budgets, tiers or fallbacks naming routes that do not exist, and anything that looks
like a credential are rejected with a message naming the file, the key path and what was expected.

The ``classify:`` section's rules are merged by name over the packaged defaults
(``data/classify-defaults.yaml``): a file only says what it adds or changes, and a rule set to
``[]`` or ``null`` is switched off. Which file, and reading it, is the edge's business
(:mod:`depthgate.configfile`); everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from depthgate.core.errors import ConfigError
from depthgate.core.guidance import Guidance, ReviewGuidance
from depthgate.core.languages import Language
from depthgate.core.secretscan import find_secret_shape
from depthgate.core.yamlsafe import load_yaml

DEFAULT_CONFIG_NAMES = ("gateway-routes.yaml", ".github/gateway-routes.yaml")
PACKAGED_CONFIG = "gateway-routes.yaml"
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
CLASSIFY_DEFAULTS = "classify-defaults.yaml"


class Tier(StrEnum):
    FAST = "fast"
    LOGIC = "logic"
    DEEP = "deep"


class Profile(StrEnum):
    LITELLM = "litellm"
    OPENROUTER = "openrouter"
    PORTKEY = "portkey"
    COMETAPI = "cometapi"
    CLOUDFLARE = "cloudflare"
    OPENAI = "openai"
    GENERIC = "generic"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie"}


class RetryConfig(_Strict):
    """The one retry layer (threats.md, "Gateway retry policy"): capped, jittered backoff for
    rate limits, 5xx, timeouts and connection errors; never for auth or an unknown alias."""

    attempts: PositiveInt = 4  # per call, the first included
    wait_initial_s: PositiveFloat = 1.0
    wait_max_s: PositiveFloat = 20.0
    max_retry_after_s: PositiveFloat = 60.0  # a longer Retry-After ends the call: handoff
    budget_s: PositiveFloat = 300.0  # per call, all attempts and waits included


class GatewayConfig(_Strict):
    """Where the gateway is and how to authenticate. Values come from the environment."""

    base_url: str | None = None
    base_url_env: str | None = "DEPTHGATE_GATEWAY_URL"
    api_key_env: str = "DEPTHGATE_GATEWAY_KEY"
    chat_path: str = "/v1/chat/completions"
    auth: str = "bearer"
    profile: Profile = Profile.LITELLM
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(default_factory=dict)
    show_host: bool = False
    retry: RetryConfig = Field(default_factory=RetryConfig)
    # An answer past this is abandoned mid-read (bad_response): a review answer is kilobytes.
    max_response_bytes: PositiveInt = DEFAULT_MAX_RESPONSE_BYTES

    @field_validator("base_url_env", "api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(
                f"expected an environment variable name such as DEPTHGATE_X, got {v!r}"
            )
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"expected an http(s) URL such as https://gateway.example/, got {v!r}")
        return v

    @field_validator("chat_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"expected a path starting with '/', got {v!r}")
        return v

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        if v in ("bearer", "none") or re.match(r"^header:[A-Za-z0-9-]+$", v):
            return v
        raise ValueError(f"expected 'bearer', 'none' or 'header:<Header-Name>', got {v!r}")

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if name.lower() in _SECRET_HEADERS:
                raise ValueError(
                    f"header {name!r} carries a credential: name its environment variable "
                    f"under gateway.headers_env instead of writing its value here"
                )
        return v

    @field_validator("headers_env")
    @classmethod
    def _headers_env(cls, v: dict[str, str]) -> dict[str, str]:
        for name, env in v.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if not _ENV_NAME.match(env):
                raise ValueError(
                    f"header {name}: expected an environment variable name, got {env!r}"
                )
        return v

    @model_validator(mode="after")
    def _one_url(self) -> GatewayConfig:
        if self.base_url is None and self.base_url_env is None:
            raise ValueError("set base_url_env (an environment variable) or base_url")
        return self


class Price(_Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Route(_Strict):
    """One gateway alias and what it may be sent."""

    send_model: str = Field(min_length=1)
    locked_model: str | None = None
    max_input_tokens: PositiveInt
    max_output_tokens: PositiveInt
    concurrency: PositiveInt = 4
    timeout_s: PositiveFloat = 120
    fallback: list[str] = Field(default_factory=list)
    token_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"  # noqa: S105 - a parameter name
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    price: Price | None = None
    on_model_mismatch: Literal["fail", "warn"] = "fail"


class Tiers(_Strict):
    fast: str
    logic: str
    deep: str

    def alias(self, tier: Tier) -> str:
        return str(getattr(self, tier.value))


class _Matching(_Strict):
    """``keywords`` are lower-cased (they prefilter lower-cased text); ``patterns`` must compile."""

    @field_validator("keywords", check_fields=False)
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [k.lower() for k in v]

    @field_validator("patterns", check_fields=False)
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        return _check_patterns(v)


class PatternRule(_Matching):
    """Regular expressions over a hunk's changed lines; the rule matches when any does."""

    patterns: list[str] = Field(min_length=1)
    # Prefilter: the patterns only run when the lower-cased changed text contains one of these.
    keywords: list[str] = Field(default_factory=list)
    languages: list[Language] = Field(default_factory=list)  # empty: every language
    lines: Literal["changed", "added", "deleted"] = "changed"


def _check_patterns(v: list[str]) -> list[str]:
    for i, pattern in enumerate(v):
        try:
            re.compile(pattern)  # compiled again, joined, by the classifier
        except re.error as exc:
            raise ValueError(f"patterns[{i}] is not a valid regular expression: {exc}") from None
    return v


class RoleRule(_Matching):
    """A security role of the code (what it is for), told by its file, imports and identifiers.

    A role alone never decides a tier: a hunk goes deep when it has a role *and* one of
    ``security_shapes`` matches its changed lines.
    """

    # Over the hunk's file path, function header, the file's import lines and the hunk's lines.
    patterns: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)  # prefilter, as in PatternRule
    paths: list[str] = Field(default_factory=list)  # gitignore-style globs: the file's role

    @model_validator(mode="after")
    def _some_evidence(self) -> RoleRule:
        if not self.patterns and not self.paths:
            raise ValueError("a role needs patterns or paths")
        return self


class SinkRule(_Matching):
    """A sink: code whose behaviour depends on the data that reaches it (design §9).

    A change to the data or control flow reaching a sink in its enclosing definition is deep
    (``deep.sink.<kind>``). ``calls`` name callees: ``eval`` (called by that bare name),
    ``re.compile`` (written with that receiver: ``re.compile``, ``x.re.compile``; also
    ``Command::new``, ``$db->query``) or ``.execute`` (a method of that name on any receiver).
    ``patterns`` are regular expressions over a line's code (``\\.innerHTML\\s*=``), ``nodes``
    tree-sitter node types (``regex`` literals).
    """

    kind: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    languages: list[Language] = Field(min_length=1)
    calls: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> SinkRule:
        if not (self.calls or self.patterns or self.nodes):
            raise ValueError("a sink needs calls, patterns or nodes")
        return self


class ClassifyConfig(_Strict):
    """Depth rules. Globs are gitignore-style (``vendor/``, ``*.min.js``, ``**/auth/**``)."""

    skip_paths: dict[str, list[str]] = Field(default_factory=dict)
    generated_markers: list[str] = Field(default_factory=list)
    deep_paths: dict[str, list[str]] = Field(default_factory=dict)
    deep_patterns: dict[str, PatternRule] = Field(default_factory=dict)
    # Security-domain signals: a hunk whose code has a role and whose change has a shape is deep.
    security_roles: dict[str, RoleRule] = Field(default_factory=dict)
    security_shapes: dict[str, PatternRule] = Field(default_factory=dict)
    # Sinks by ``<language>.<kind>`` (defaults: ``data/sinks/<language>.yaml``).
    sinks: dict[str, SinkRule] = Field(default_factory=dict)
    manifests: list[str] = Field(default_factory=list)
    skip_deleted_files: bool = True
    cross_file: bool = True
    public_signatures: bool = True
    control_flow: bool = True
    logic_min_changed_lines: PositiveInt = 6
    fast_max_config_lines: PositiveInt = 20
    max_line_chars: PositiveInt = 2000
    min_symbol_length: PositiveInt = 4


class Limits(_Strict):
    """Per-PR budgets. What does not fit is dropped visibly, never silently."""

    max_hunks: PositiveInt = 500
    max_tokens_per_alias: dict[str, PositiveInt] = Field(default_factory=dict)
    max_comments: PositiveInt = 30
    # a margin for the estimate's error (the instructions themselves are counted apart)
    prompt_overhead_tokens: int = Field(default=200, ge=0)
    # other hunks of the same file a logic task carries, after its enclosing definition
    logic_context_tokens: int = Field(default=3000, ge=0)
    # an absolute cap on a deep task's context, on top of deep_context_share; None: the share only
    deep_context_tokens: int | None = Field(default=None, ge=0)
    # the share of the deep alias's own input budget a deep task may fill with the rest of the PR
    # diff (after its code context): 0.05 keeps the deep alias at 59% of "everything deep"
    # diff-only on bench/routing_eval.py (0.25 made it 73%)
    deep_context_share: float = Field(default=0.05, ge=0, le=0.9)
    # a definition longer than this is shown as its signature plus a window around the hunk
    max_definition_lines: int = Field(default=150, ge=10)
    # the PR description is cut to this many estimated tokens, and sent to logic and deep only
    pr_body_tokens: int = Field(default=2000, ge=0)
    # source files read for context (design §9): a file or a PR over these falls back to the diff
    source_max_file_bytes: PositiveInt = 1 << 20
    source_max_pr_bytes: PositiveInt = 8 << 20


class Escalation(_Strict):
    """Per-hunk escalation at review time: a cheaper alias's answer may flag a hunk of its own
    as needing the deep review, and the deep alias reviews it in the same run -- at most
    ``max_hunks`` per PR, within the deep alias's ``max_tokens_per_alias``."""

    enabled: bool = True
    max_hunks: int = Field(default=10, ge=0)


class RoutesConfig(_Strict):
    version: Literal[1]
    gateway: GatewayConfig
    routes: dict[str, Route] = Field(min_length=1)
    tiers: Tiers
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)
    limits: Limits = Field(default_factory=Limits)
    escalation: Escalation = Field(default_factory=Escalation)
    review: ReviewGuidance = Field(default_factory=ReviewGuidance)

    @model_validator(mode="after")
    def _references(self) -> RoutesConfig:
        known = sorted(self.routes)
        for tier in Tier:
            alias = self.tiers.alias(tier)
            if alias not in self.routes:
                raise ValueError(
                    f"tiers.{tier.value}: {alias!r} is not a route (routes: {', '.join(known)})"
                )
        for name, route in self.routes.items():
            for fb in route.fallback:
                if fb == name:
                    raise ValueError(f"routes.{name}.fallback: a route cannot fall back to itself")
                if fb not in self.routes:
                    raise ValueError(
                        f"routes.{name}.fallback: {fb!r} is not a route "
                        f"(routes: {', '.join(known)})"
                    )
        for alias in self.limits.max_tokens_per_alias:
            if alias not in self.routes:
                raise ValueError(
                    f"limits.max_tokens_per_alias: {alias!r} is not a route "
                    f"(routes: {', '.join(known)})"
                )
        return self


@dataclass(frozen=True)
class LoadedConfig:
    config: RoutesConfig
    source: str  # a path, or "<packaged default>"; a repository's file: "<it> over <operator's>"
    sha256: str  # of the file's bytes (both files' with a repository's): in plans and handoffs
    # what a repository's config set that was not used (depthgate.core.repoconfig): shown in the
    # summary, the check run, annotations and on stderr
    warnings: tuple[str, ...] = ()
    # the repository's guideline files (review.guidelines) as read from the commit the config
    # came from, capped and without depthgate's routing block: logic and deep tasks carry them
    guidelines: tuple[Guidance, ...] = ()


# --------------------------------------------------------------------------------------------
# Loading


_SECRET_KEY = re.compile(
    r"(?i)^(api[_-]?key|apikey|key|secret|token|password|passwd|authorization|bearer|"
    r".*[_-](key|secret|token|password))$"
)


def _reject_secrets(data: Any, where: str, source: str) -> None:
    """No credential may be written into the file: keys go in the environment."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            scalar = isinstance(value, str | int) and not isinstance(value, bool)
            if isinstance(key, str) and _SECRET_KEY.match(key) and scalar and value != "":
                raise ConfigError(
                    f"{source}: {path}: credentials must not be written in this file; put the key "
                    f"in an environment variable and name it in gateway.api_key_env"
                )
            _reject_secrets(value, path, source)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _reject_secrets(value, f"{where}[{i}]", source)
    elif isinstance(data, str):
        shape = find_secret_shape(data)
        if shape:
            raise ConfigError(
                f"{source}: {where}: the value looks like a {shape}; credentials must not be "
                f"written in this file: put them in an environment variable"
            )


def _merge_rules(defaults: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            inner = dict(merged[key])
            for name, rule in value.items():
                if rule is None or rule == []:
                    inner.pop(name, None)
                else:
                    inner[name] = rule
            merged[key] = inner
        else:
            merged[key] = value
    return merged


def packaged_text(name: str) -> str:
    """A file of depthgate's own package data (``data/``): part of the program, not its input."""
    return resources.files("depthgate").joinpath("data", name).read_text(encoding="utf-8")


def classify_defaults() -> dict[str, Any]:
    data = load_yaml(packaged_text(CLASSIFY_DEFAULTS), CLASSIFY_DEFAULTS)
    assert isinstance(data, dict)
    return {**data, "sinks": sink_defaults()}


# The packaged sink catalogues: one file per language; JavaScript's also covers TypeScript.
SINK_FILES = {
    "python": ("python",),
    "javascript": ("javascript", "typescript"),
    "go": ("go",),
    "java": ("java",),
    "ruby": ("ruby",),
    "rust": ("rust",),
    "csharp": ("csharp",),
    "php": ("php",),
    "shell": ("shell",),
}


def sink_defaults() -> dict[str, Any]:
    """``<language>.<kind>`` -> rule, from ``data/sinks/<language>.yaml`` (each entry's
    ``kind`` is its key, its ``languages`` the file's)."""
    out: dict[str, Any] = {}
    for name, languages in SINK_FILES.items():
        text = packaged_text(f"sinks/{name}.yaml")
        data = load_yaml(text, f"sinks/{name}.yaml")
        assert isinstance(data, dict)
        for kind, rule in data.items():
            out[f"{name}.{kind}"] = {"kind": kind, "languages": list(languages), **rule}
    return out


def parse_config(text: str, source: str) -> RoutesConfig:
    """Validate YAML text as a route config. ``source`` names it in error messages."""
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping with version, gateway, routes and tiers at the top "
            f"level, got {type(data).__name__}"
        )
    _reject_secrets(data, "", source)
    classify = data.get("classify")
    if classify is not None and not isinstance(classify, Mapping):
        raise ConfigError(f"{source}: classify: expected a mapping of rules")
    data = {**data, "classify": _merge_rules(classify_defaults(), classify or {})}
    try:
        return RoutesConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    """pydantic's errors as ``key.path: what was expected, got X``, joined on one line."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        kind = err["type"]
        got = err.get("input")
        if kind == "extra_forbidden":
            msg = "unknown key (check the spelling; `depthgate routes schema` lists the keys)"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "value_error":
            msg = str(err["msg"]).removeprefix("Value error, ")
        elif kind in ("greater_than", "greater_than_equal", "less_than_equal"):
            bound = next(iter((err.get("ctx") or {}).values()), "?")
            word = {"greater_than": "greater than", "greater_than_equal": "at least"}.get(
                kind, "at most"
            )
            msg = f"expected a number {word} {bound}, got {got!r}"
        else:
            msg = f"{err['msg'][0].lower()}{err['msg'][1:]}, got {got!r}"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of gateway-routes.yaml (``depthgate routes schema``)."""
    schema = RoutesConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gateway-routes.yaml"
    return schema
