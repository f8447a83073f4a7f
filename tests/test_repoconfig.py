"""The trust boundary between the operator's config and a repository's (design §10), and bounded
YAML: what a repository may choose, what is ignored with a warning, what is refused, and the
hostile texts (billion laughs, 100,000-deep nesting) as one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from depthgate.configfile import (
    REPOSITORY_CONFIG_PATHS,
    layer_repository_config,
    load_config,
    read_repository_config,
)
from depthgate.core.errors import ConfigError
from depthgate.core.guidance import MAX_GUIDELINE_BYTES, ROUTING_END, ROUTING_START
from depthgate.core.repoconfig import merge, parse_repository_config, repository_schema
from depthgate.core.routes import LoadedConfig, Tier, parse_config
from depthgate.core.source import Blob, BlobRequest
from depthgate.core.yamlsafe import MAX_CONFIG_BYTES, MAX_DEPTH, load_yaml

DEPTHGATE = Path(sys.executable).parent / "depthgate"
OPERATOR = textwrap.dedent(
    """\
    version: 1
    gateway:
      base_url_env: OPERATOR_GATEWAY_URL
      api_key_env: OPERATOR_GATEWAY_KEY
      headers_env: {X-Team: OPERATOR_TEAM}
    routes:
      cheap: {send_model: m-cheap, max_input_tokens: 12000, max_output_tokens: 1000}
      mid: {send_model: m-mid, max_input_tokens: 50000, max_output_tokens: 2000}
      deep: {send_model: m-deep, max_input_tokens: 120000, max_output_tokens: 4000}
    tiers: {fast: cheap, logic: mid, deep: deep}
    limits:
      max_hunks: 100
      max_comments: 20
      max_tokens_per_alias: {deep: 300000}
      deep_context_tokens: 4000
    escalation: {enabled: true, max_hunks: 5}
    classify:
      deep_paths: {payments: ["billing/**"]}
    """
)
# The 600-byte YAML of threats.md: nine levels of nine aliases, 387 M strings once expanded.
BILLION_LAUGHS = (
    'version: 1\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "classify: {skip_paths: {x: [*i]}}\n"
    + "# padding to the size of the probe's file " * 5
)


@pytest.fixture
def operator() -> LoadedConfig:
    return LoadedConfig(parse_config(OPERATOR, "operator.yaml"), "operator.yaml", "0" * 64)


def layered(operator: LoadedConfig, text: str) -> LoadedConfig:
    return layer_repository_config(operator, textwrap.dedent(text), "o/r@base:gateway-routes.yaml")


# --- what a repository may choose --------------------------------------------------------------


def test_a_repository_chooses_tiers_limits_escalation_and_classify(operator: LoadedConfig) -> None:
    eff = layered(
        operator,
        """\
        tiers: {logic: deep}
        limits: {max_comments: 5, max_hunks: 40, max_tokens_per_alias: {deep: 100000, mid: 9000}}
        escalation: {max_hunks: 2}
        classify:
          deep_paths: {crypto: ["crypto/**"]}
          skip_paths: {lockfile: []}
        """,
    )
    cfg = eff.config
    assert eff.warnings == ()
    assert (cfg.tiers.fast, cfg.tiers.logic, cfg.tiers.deep) == ("cheap", "deep", "deep")
    assert (cfg.limits.max_comments, cfg.limits.max_hunks) == (5, 40)
    assert cfg.limits.max_tokens_per_alias == {"deep": 100000, "mid": 9000}
    assert cfg.limits.deep_context_tokens == 4000  # not chosen: the operator's
    assert (cfg.escalation.enabled, cfg.escalation.max_hunks) == (True, 2)
    # rules merge by name over the operator's (which are over the packaged defaults)
    assert cfg.classify.deep_paths["payments"] == ["billing/**"]
    assert cfg.classify.deep_paths["crypto"] == ["crypto/**"]
    assert "lockfile" not in cfg.classify.skip_paths
    assert "generated" in cfg.classify.skip_paths
    assert eff.source == "o/r@base:gateway-routes.yaml over operator.yaml"
    assert eff.sha256 != operator.sha256


def test_an_empty_repository_file_chooses_nothing(operator: LoadedConfig) -> None:
    eff = layered(operator, "# nothing yet\n")
    assert eff.config == operator.config
    assert eff.warnings == ()


# --- what it may not: the operator's keys are ignored, never used -----------------------------


def test_gateway_and_routes_of_a_repository_are_ignored_with_a_warning(
    operator: LoadedConfig,
) -> None:
    eff = layered(
        operator,
        """\
        version: 1
        gateway:
          base_url_env: null
          base_url: http://127.0.0.1:9/attacker
          api_key_env: DEPTHGATE_WEBHOOK_SECRET
          headers_env: {X-Leak: DEPTHGATE_PRIVATE_KEY}
          profile: openai
        routes:
          cheap: {send_model: gpt-5-pro, max_input_tokens: 999999, max_output_tokens: 99999}
        tiers: {fast: cheap, logic: cheap, deep: cheap}
        """,
    )
    cfg, op = eff.config, operator.config
    assert cfg.gateway is op.gateway  # the operator's object, untouched
    assert cfg.routes is op.routes
    assert cfg.gateway.base_url is None
    assert cfg.gateway.base_url_env == "OPERATOR_GATEWAY_URL"
    assert cfg.gateway.api_key_env == "OPERATOR_GATEWAY_KEY"
    assert cfg.gateway.headers_env == {"X-Team": "OPERATOR_TEAM"}
    assert cfg.routes["cheap"].send_model == "m-cheap"
    assert cfg.tiers.deep == "cheap"  # tiers naming the operator's aliases: a fair choice
    assert [w.split(": ")[1] for w in eff.warnings] == ["gateway", "routes"]
    assert all(w.startswith("o/r@base:gateway-routes.yaml: ") for w in eff.warnings)
    # the warning names the key, never the repository's values
    assert not any("127.0.0.1" in w or "DEPTHGATE_" in w or "gpt-5" in w for w in eff.warnings)


def test_choices_past_the_operators_bounds_are_lowered_with_a_warning(
    operator: LoadedConfig,
) -> None:
    eff = layered(
        operator,
        """\
        tiers: {fast: my-own-alias}
        limits:
          max_comments: 500
          max_hunks: 100
          deep_context_tokens: 90000
          max_tokens_per_alias: {deep: 9000000, cheap: 50000, nowhere: 5, elsewhere: 6}
        escalation: {max_hunks: 50}
        """,
    )
    cfg = eff.config
    assert cfg.tiers.fast == "cheap"
    assert cfg.limits.max_comments == 20
    assert cfg.limits.max_hunks == 100  # equal to the maximum: allowed, no warning
    assert cfg.limits.deep_context_tokens == 4000
    assert cfg.limits.max_tokens_per_alias == {"deep": 300000, "cheap": 50000}
    assert cfg.escalation.max_hunks == 5
    assert [w.split(": ", 2)[1] for w in eff.warnings] == [
        "tiers.fast",
        "limits.max_comments",
        "limits.deep_context_tokens",
        "limits.max_tokens_per_alias.deep",
        "limits.max_tokens_per_alias",
        "escalation.max_hunks",
    ]
    assert "500 is above the operator's maximum 20; 20 is used" in eff.warnings[1]
    assert "my-own-alias" not in eff.warnings[0]  # repository text is not repeated
    assert "2 entries name no route" in eff.warnings[4]


def test_escalation_can_be_switched_off_but_not_on() -> None:
    op = parse_config(OPERATOR.replace("enabled: true", "enabled: false"), "operator.yaml")
    repo, _ = parse_repository_config("escalation: {enabled: true}\n", "r.yaml")
    cfg, warnings = merge(op, repo, "r.yaml")
    assert cfg.escalation.enabled is False
    assert warnings == [
        "r.yaml: escalation.enabled: the operator has escalation switched off; it stays off"
    ]
    on = parse_config(OPERATOR, "operator.yaml")
    off, _ = parse_repository_config("escalation: {enabled: false}\n", "r.yaml")
    assert merge(on, off, "r.yaml")[0].escalation.enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gatway: {}\n", "r.yaml: gatway: unknown key (check the spelling"),
        ("limits: {prompt_overhead_tokens: 0}\n", "limits.prompt_overhead_tokens: unknown key"),
        ("limits: {max_comments: 0}\n", "limits.max_comments: expected a number greater than 0"),
        ("limits: 3\n", "r.yaml: limits: input should be a valid dictionary"),
        ("tiers: {fast: 3}\n", "tiers.fast: input should be a valid string"),
        ("- a\n", "r.yaml: expected a mapping of review settings"),
        ("classify: [1]\n", "r.yaml: classify: expected a mapping of rules"),
        ("version: 2\n", "version: input should be 1"),
        (
            "classify: {deep_patterns: {x: {patterns: ['(']}}}\n",
            "r.yaml: classify.deep_patterns.x.patterns: patterns[0] is not a valid regular",
        ),
        ("classify: {api_key: sk-abcdefghijklmnopqrstuvwx}\n", "credentials must not be written"),
    ],
)
def test_anything_else_wrong_is_a_config_error(
    operator: LoadedConfig, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        layer_repository_config(operator, text, "r.yaml")
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_the_repository_schema_has_no_operator_keys() -> None:
    schema = repository_schema()
    json.dumps(schema)
    assert set(schema["properties"]) == {
        "version",
        "tiers",
        "classify",
        "limits",
        "escalation",
        "review",
    }
    assert "prompt_overhead_tokens" not in schema["$defs"]["RepositoryLimits"]["properties"]
    assert schema["additionalProperties"] is False


# --- where it is read from: one list, one read -------------------------------------------------


class Reader:
    """A BlobReader over a dict of (rev, path) -> text, counting its reads."""

    def __init__(self, files: Mapping[tuple[str, str], str | Blob]) -> None:
        self.files = files
        self.reads: list[list[str]] = []

    def read_blobs(self, requests: Sequence[BlobRequest], *, max_bytes: int) -> dict[str, Blob]:
        assert max_bytes == MAX_GUIDELINE_BYTES
        self.reads.append([f"{r.rev}:{r.path}" for r in requests])
        out = {}
        for r in requests:
            found = self.files.get((r.rev or "", r.path or ""))
            out[r.key] = (
                found
                if isinstance(found, Blob)
                else Blob(found)
                if found is not None
                else Blob(None, problem="not found")
            )
        return out


def test_the_first_path_that_exists_is_read_in_one_read(operator: LoadedConfig) -> None:
    assert REPOSITORY_CONFIG_PATHS == ("gateway-routes.yaml", ".github/gateway-routes.yaml")
    sha = "b" * 40
    reader = Reader(
        {
            (sha, ".github/gateway-routes.yaml"): "limits: {max_comments: 3}\n",
            (sha, "gateway-routes.yaml"): "limits: {max_comments: 2}\n",
            ("c" * 40, "gateway-routes.yaml"): "limits: {max_comments: 1}\n",
        }
    )
    eff = read_repository_config(reader, "o/r", sha, operator)
    assert reader.reads == [
        [
            f"{sha}:gateway-routes.yaml",
            f"{sha}:.github/gateway-routes.yaml",
            f"{sha}:AGENTS.md",
            f"{sha}:CONTRIBUTING.md",
            f"{sha}:.github/copilot-instructions.md",
        ]
    ]
    assert eff.config.limits.max_comments == 2
    assert eff.source == "o/r@bbbbbbbbbbbb:gateway-routes.yaml over operator.yaml"
    only_github = Reader({("main", ".github/gateway-routes.yaml"): "tiers: {fast: mid}\n"})
    assert read_repository_config(only_github, "o/r", "main", operator).config.tiers.fast == "mid"
    assert read_repository_config(Reader({}), "o/r", "main", operator) is operator


def test_a_config_github_will_not_send_is_an_error_not_a_silent_fallback(
    operator: LoadedConfig,
) -> None:
    big = Blob(None, size=MAX_CONFIG_BYTES + 1, problem="file over 64 KB")
    with pytest.raises(ConfigError, match=r"o/r@main:gateway-routes.yaml: cannot be used \(file"):
        read_repository_config(
            Reader({("main", "gateway-routes.yaml"): big}), "o/r", "main", operator
        )


def test_guideline_files_come_in_the_same_read_without_the_routing_block(
    operator: LoadedConfig,
) -> None:
    sha = "d" * 40
    agents = f"Use tabs.\n{ROUTING_START}\nfast: cheap-model\n{ROUTING_END}\nName things well.\n"
    reader = Reader({(sha, "AGENTS.md"): agents})
    eff = read_repository_config(reader, "o/r", sha, operator)
    assert len(reader.reads) == 1  # no config, one guideline file: still one read
    assert [(g.source, g.text) for g in eff.guidelines] == [
        ("AGENTS.md", "Use tabs.\n\nName things well.")
    ]
    assert eff.warnings == ()  # the two default files that do not exist are not worth a word


def test_a_repository_naming_its_own_guidelines_costs_one_more_read_for_those_only(
    operator: LoadedConfig,
) -> None:
    sha = "e" * 40
    reader = Reader(
        {
            (sha, "gateway-routes.yaml"): "review: {guidelines: [docs/REVIEW.md, AGENTS.md]}\n",
            (sha, "docs/REVIEW.md"): "Every endpoint checks the tenant.\n",
            (sha, "AGENTS.md"): "Run make test.\n",
        }
    )
    eff = read_repository_config(reader, "o/r", sha, operator)
    assert reader.reads[1] == [f"{sha}:docs/REVIEW.md"]
    assert [g.source for g in eff.guidelines] == ["docs/REVIEW.md", "AGENTS.md"]


def test_a_guideline_that_cannot_be_used_is_said_and_the_budget_cuts_the_rest(
    operator: LoadedConfig,
) -> None:
    sha = "f" * 40
    long = "".join(f"rule {n}: be kind to reviewers\n" for n in range(200))
    reader = Reader(
        {
            (sha, "gateway-routes.yaml"): "review: {guidelines_max_tokens: 40}\n",
            (sha, "AGENTS.md"): Blob(None, problem="binary file"),
            (sha, "CONTRIBUTING.md"): long,
        }
    )
    eff = read_repository_config(reader, "o/r", sha, operator)
    assert any("AGENTS.md@ffffffffffff is not used: binary file" in w for w in eff.warnings)
    (contributing,) = eff.guidelines
    assert contributing.text.startswith("rule 0: be kind")
    assert contributing.text.endswith("[... CONTRIBUTING.md cut to fit the guideline budget]")
    assert len(contributing.text) < 200


def test_a_branch_name_with_markdown_is_not_repeated(operator: LoadedConfig) -> None:
    rev = "x`@team<img>"
    eff = read_repository_config(Reader({(rev, "gateway-routes.yaml"): ""}), "o/r", rev, operator)
    assert eff.source == "o/r@?:gateway-routes.yaml over operator.yaml"


# --- bounded YAML -------------------------------------------------------------------------------


def test_aliases_anchors_and_merges_are_refused_before_anything_walks_them() -> None:
    assert 550 <= len(BILLION_LAUGHS.encode()) <= 650
    with pytest.raises(ConfigError) as info:
        load_yaml(BILLION_LAUGHS, "g.yaml")
    assert info.value.message == (
        "g.yaml:2:4: anchors and aliases (`&name`, `*name`, `<<: *name`) are not allowed in "
        "this file; write each value out"
    )
    for text in ("a: &x 1\n", "a: 1\nb: *x\n", "a: {b: 1}\nc: {<<: *a}\n"):
        with pytest.raises(ConfigError, match="anchors and aliases"):
            load_yaml(text, "g.yaml")


def test_nesting_is_capped_before_the_parser_recurses() -> None:
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_yaml(ok, "g.yaml") is not None
    for text in (
        "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n",
        "[" * 30_000,  # deep, within the size cap: the depth counter, not the size, refuses it
        "a:\n" + "".join(f"{' ' * (i + 1)}k{i}:\n" for i in range(200)),
    ):
        with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels deep"):
            load_yaml(text, "g.yaml")


def test_size_is_capped_before_parsing() -> None:
    with pytest.raises(ConfigError, match=r"g.yaml: 65,537 bytes, over the 65,536-byte limit"):
        load_yaml("#" * (MAX_CONFIG_BYTES + 1), "g.yaml")


def test_a_huge_config_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "g.yaml"
    big.write_text("#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="over the 65,536-byte limit"):
        load_config(str(big))


def test_the_operators_file_has_the_same_bounds() -> None:
    with pytest.raises(ConfigError, match=r"op\.yaml:2:4: anchors and aliases"):
        parse_config(BILLION_LAUGHS, "op.yaml")


def test_deep_tiers_of_the_packaged_default_still_parse() -> None:
    assert load_config(None, cwd=Path("/nonexistent")).config.tiers.alias(Tier.DEEP)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("laughs.yaml", BILLION_LAUGHS, ":2:4: anchors and aliases"),
        ("100000-deep.yaml", "tiers: " + "[" * 100_000 + "]" * 100_000, ": over the 65,536-byte"),
        ("deep.yaml", "tiers: " + "[" * 30_000 + "]" * 30_000 + "\n", ":1:39: nested more than"),
        ("deep.json", '{"tiers": ' + "[" * 30_000 + "]" * 30_000 + "}", ":1:42: nested more than"),
    ],
)
@pytest.mark.parametrize("as_repository", [False, True], ids=["operator", "repository"])
def test_routes_check_ends_hostile_yaml_with_one_line_and_exit_2(
    tmp_path: Path, name: str, text: str, message: str, as_repository: bool
) -> None:
    path = tmp_path / name
    path.write_text(text)
    args = ["--repository", str(path)] if as_repository else ["--config", str(path)]
    # the timeout only keeps a regression from hanging the suite: the run takes well under 1 s
    proc = subprocess.run(
        [str(DEPTHGATE), "routes", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.rstrip("\n")]
    assert proc.stderr.startswith(f"depthgate: error: {path}{message}")


def test_routes_check_shows_what_a_repository_file_may_not_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from depthgate.cli.main import main  # noqa: PLC0415 - the console entry, in process

    op, repo = tmp_path / "operator.yaml", tmp_path / "repo.yaml"
    op.write_text(OPERATOR)
    repo.write_text("gateway: {base_url: http://127.0.0.1:9}\ntiers: {deep: mid}\n")
    code = main(["routes", "check", "--config", str(op), "--repository", str(repo)])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith(
        f"{repo} over {op}: valid (3 routes; fast -> cheap, logic -> mid, deep -> mid;"
    )
    assert err.splitlines() == [
        f"depthgate: warning: {repo}: gateway: ignored: a repository's config cannot choose the "
        "gateway connection (URL, key, headers, profile, TLS, retries) nor which environment "
        "variables are read; the operator's settings are used. Delete the `gateway:` section "
        "from this file."
    ]
    assert main(["routes", "schema", "--repository"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "gateway" not in schema["properties"]
    assert main(["routes", "schema"]) == 0
    assert "gateway" in json.loads(capsys.readouterr().out)["properties"]


def test_a_repository_chooses_its_review_guidance() -> None:
    """review: is the repository's (instructions, guidelines, skip rules): it replaces the
    operator's defaults as a whole, and still cannot name anything the operator owns."""
    operator = load_config(None).config
    repo, warnings = parse_repository_config(
        "review:\n  instructions: Prefer pathlib.\n  skip:\n    labels: [wip]\n", "r.yaml"
    )
    effective, more = merge(operator, repo, "r.yaml")
    assert (warnings, more) == ([], [])
    assert effective.review.instructions == "Prefer pathlib."
    assert effective.review.skip.labels == ("wip",)
    assert effective.gateway is operator.gateway
    with pytest.raises(ConfigError, match=r"review\.gateway"):
        parse_repository_config("review:\n  gateway: {base_url: https://evil}\n", "r.yaml")
