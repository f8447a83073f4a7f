"""gateway-routes.yaml validation: every rejection names the file, the key path and the fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from depthgate.configfile import load_config
from depthgate.core.errors import ConfigError
from depthgate.core.routes import Tier, config_schema, parse_config

BASE = textwrap.dedent(
    """\
    version: 1
    gateway:
      base_url_env: DEPTHGATE_GATEWAY_URL
      api_key_env: DEPTHGATE_GATEWAY_KEY
      profile: litellm
    routes:
      review-fast:
        send_model: review-fast
        locked_model: gpt-4.1-mini*
        max_input_tokens: 12000
        max_output_tokens: 1200
      review-deep:
        send_model: review-deep
        max_input_tokens: 120000
        max_output_tokens: 4000
        fallback: [review-fast]
    tiers:
      fast: review-fast
      logic: review-deep
      deep: review-deep
    """
)


def test_valid_config_and_defaults() -> None:
    cfg = parse_config(BASE, "g.yaml")
    assert cfg.tiers.alias(Tier.DEEP) == "review-deep"
    assert cfg.routes["review-deep"].fallback == ["review-fast"]
    # classify defaults are merged in
    assert "shell_exec" in cfg.classify.deep_patterns
    assert "lockfile" in cfg.classify.skip_paths


def test_packaged_default_is_valid() -> None:
    loaded = load_config(None, cwd=Path("/nonexistent-dir-for-test"))
    assert loaded.source == "<packaged default>"
    assert len(loaded.sha256) == 64


def test_default_search_order(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "gateway-routes.yaml").write_text(BASE)
    assert load_config(None, cwd=tmp_path).source == ".github/gateway-routes.yaml"
    (tmp_path / "gateway-routes.yaml").write_text(BASE)
    assert load_config(None, cwd=tmp_path).source == "gateway-routes.yaml"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("deep: review-deep", "deep: review-dep"),
            "g.yaml: tiers.deep: 'review-dep' is not a route (routes: review-deep, review-fast)",
        ),
        (
            ("fallback: [review-fast]", "fallback: [review-nope]"),
            "g.yaml: routes.review-deep.fallback: 'review-nope' is not a route",
        ),
        (
            ("fallback: [review-fast]", "fallback: [review-deep]"),
            "g.yaml: routes.review-deep.fallback: a route cannot fall back to itself",
        ),
        (
            ("max_input_tokens: 12000", "max_input_tokens: 0"),
            "g.yaml: routes.review-fast.max_input_tokens: expected a number greater than 0, got 0",
        ),
        (
            ("max_output_tokens: 4000", "max_output_tokens: -5"),
            "g.yaml: routes.review-deep.max_output_tokens: expected a number greater than 0",
        ),
        (
            ("profile: litellm", "profile: litellm\n  colour: blue"),
            "g.yaml: gateway.colour: unknown key",
        ),
        (
            ("profile: litellm", "profile: nginx"),
            "g.yaml: gateway.profile: input should be",
        ),
        (
            ("api_key_env: DEPTHGATE_GATEWAY_KEY", "api_key: sk-live-abcdefghijklmnopqrstuvwx"),
            "g.yaml: gateway.api_key: credentials must not be written in this file",
        ),
        (
            ("base_url_env: DEPTHGATE_GATEWAY_URL", "base_url: https://u:hunter2@gw.example/"),
            "g.yaml: gateway.base_url: the value looks like a credentials in a URL",
        ),
        (
            ("profile: litellm", "profile: litellm\n  headers: {Authorization: Basic abc}"),
            "g.yaml: gateway.headers.Authorization: credentials must not be written",
        ),
        (
            ("version: 1", "version: 2"),
            "g.yaml: version: input should be 1",
        ),
        (
            ("send_model: review-fast", "send_model: review-fast\n    send_model: again"),
            "g.yaml:9:5: not valid YAML: duplicate key 'send_model'",
        ),
        (
            ("tiers:", "tiers: [oops"),
            "g.yaml:",
        ),
    ],
)
def test_rejections(edit: tuple[str, str], message: str) -> None:
    text = BASE.replace(*edit, 1)
    assert text != BASE
    with pytest.raises(ConfigError) as info:
        parse_config(text, "g.yaml")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_keys_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("version: 1\n", "g.yaml")
    msg = str(info.value)
    for key in ("gateway: required key is missing", "routes:", "tiers:"):
        assert key in msg


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config("- a\n- b\n", "g.yaml")


def test_classify_rules_merge_by_name_and_can_be_switched_off() -> None:
    text = BASE + textwrap.dedent(
        """\
        classify:
          deep_paths:
            billing: ["billing/"]
            migrations: []
          skip_paths:
            lockfile: null
          logic_min_changed_lines: 3
        """
    )
    cfg = parse_config(text, "g.yaml").classify
    assert cfg.deep_paths["billing"] == ["billing/"]
    assert "migrations" not in cfg.deep_paths
    assert "ci_workflow" in cfg.deep_paths  # defaults kept
    assert "lockfile" not in cfg.skip_paths
    assert cfg.logic_min_changed_lines == 3


def test_bad_regex_is_reported_with_its_path() -> None:
    text = BASE + "classify:\n  deep_patterns:\n    mine:\n      patterns: ['(unclosed']\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "g.yaml")
    assert "classify.deep_patterns.mine.patterns" in str(info.value)
    assert "not a valid regular expression" in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1 # caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(bad))


def test_schema_describes_the_contract_keys() -> None:
    schema = config_schema()
    json.dumps(schema)
    assert set(schema["required"]) == {"version", "gateway", "routes", "tiers"}
    route = schema["$defs"]["Route"]["properties"]
    for key in (
        "send_model",
        "locked_model",
        "max_input_tokens",
        "max_output_tokens",
        "concurrency",
        "timeout_s",
        "fallback",
    ):
        assert key in route
    assert schema["$defs"]["Route"]["additionalProperties"] is False
