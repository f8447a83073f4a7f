"""Team guidance: skip rules, instructions per path, guideline files without depthgate's block."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from depthgate.cli.instructions import END, START
from depthgate.core.guidance import (
    PullRequestFacts,
    ReviewGuidance,
    SkipRules,
    guidelines,
    instructions_for,
    skip_reason,
    strip_routing_block,
)


def _pr(
    author: str = "alice", labels: tuple[str, ...] = (), title: str = "Fix it"
) -> PullRequestFacts:
    return PullRequestFacts(author, labels, title)


@pytest.mark.parametrize(
    ("pr", "reason"),
    [
        (_pr("dependabot[bot]"), "author dependabot[bot] matches review.skip.authors"),
        (_pr("renovate[bot]"), "matches review.skip.authors (renovate[bot])"),
        (_pr(labels=("bug", "no-depthgate")), "label no-depthgate"),
        (_pr(), None),
        (_pr("dependabotb"), None),  # brackets are literal in login globs
        (_pr("alice[bot]"), None),
    ],
)
def test_default_skip_rules(pr: PullRequestFacts, reason: str | None) -> None:
    got = skip_reason(SkipRules(), pr)
    if reason is None:
        assert got is None
    else:
        assert got is not None
        assert reason in got


def test_configured_skip_rules() -> None:
    rules = SkipRules(authors=("*-bot", "ci?"), labels=(), titles=(r"^\[?WIP\b",))
    assert skip_reason(rules, _pr("deploy-bot")) is not None
    assert skip_reason(rules, _pr("ci1")) is not None
    assert skip_reason(rules, _pr("ci12")) is None
    assert skip_reason(rules, _pr(title="[WIP] half done")) is not None
    assert skip_reason(rules, _pr(title="Remove WIPE")) is None
    assert skip_reason(rules, _pr("dependabot[bot]")) is None  # the defaults were replaced


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"skip": {"titles": ["(unclosed"]}}, "not a regular expression"),
        ({"guidelines": ["../secrets"]}, "a path inside the repository"),
        ({"guidelines": ["/etc/passwd"]}, "a path inside the repository"),
        ({"instructions": "x" * 5000}, "at most 4000"),
        ({"gateway": {}}, "Extra inputs"),
    ],
)
def test_invalid_guidance(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReviewGuidance.model_validate(data)


def test_instructions_by_path() -> None:
    g = ReviewGuidance(
        instructions="Target Python 3.11.",
        path_instructions={"migrations/**": "Reversible only.", "*.md": "Spelling."},
    )
    got = instructions_for(g, ["migrations/0002_add.py", "src/app.py"])
    assert [(x.source, x.text) for x in got] == [
        ("review.instructions", "Target Python 3.11."),
        ("review.path_instructions[migrations/**]", "Reversible only."),
    ]
    assert [x.source for x in instructions_for(g, ["src/app.py"])] == ["review.instructions"]


def test_guidelines_leave_out_the_routing_block_and_keep_to_the_budget() -> None:
    agents = f"# Rules\nUse pathlib.\n\n{START}\n## Model routing\n| x |\n{END}\nTest everything.\n"
    files = {"AGENTS.md": agents, "CONTRIBUTING.md": "line\n" * 400, "missing.md": None}
    got = guidelines(files, ["AGENTS.md", "missing.md", "CONTRIBUTING.md"], max_chars=300)
    assert [g.source for g in got] == ["AGENTS.md", "CONTRIBUTING.md"]
    assert "Model routing" not in got[0].text
    assert "Use pathlib." in got[0].text
    assert "Test everything." in got[0].text
    assert sum(len(g.text) for g in got) <= 300 + 100  # the cut marker
    assert got[1].text.endswith("[... CONTRIBUTING.md cut to fit the guideline budget]")


def test_strip_routing_block_edge_cases() -> None:
    assert strip_routing_block(f"a{START}b") == "a"  # unterminated: the rest is the block
    assert strip_routing_block(f"a{START}b{END}c{START}d{END}e") == "ace"
