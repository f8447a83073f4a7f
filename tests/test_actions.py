"""The Actions runtime on GitHub's real payload examples (shared/data/github)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from depthgate.core.errors import InputError
from depthgate.github.actions import (
    Kind,
    add_mask,
    annotation,
    append_summary,
    cap_summary,
    decide,
    format_outputs,
    group,
    parse_event,
    read_event,
    write_outputs,
)

EXAMPLES = Path(__file__).resolve().parent / "data" / "webhooks"  # octokit/webhooks examples
PR_EXAMPLES = sorted((EXAMPLES / "pull_request").glob("*.json"))


def test_the_payload_examples_are_there() -> None:
    assert len(PR_EXAMPLES) >= 9  # an empty glob would silently skip the parametrized tests


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "pull_request" / name).read_text())
    return data


@pytest.mark.parametrize("path", PR_EXAMPLES, ids=[p.stem for p in PR_EXAMPLES])
def test_every_real_pull_request_payload_parses(path: Path) -> None:
    event = read_event(str(path))
    assert event.pull_request is not None
    assert event.pull_request.head.sha
    assert event.action == path.name.split(".")[0]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("opened.payload.json", Kind.REVIEW),
        ("opened.with-null-body.json", Kind.REVIEW),
        ("synchronize.payload.json", Kind.REVIEW),
        ("reopened.payload.json", Kind.REVIEW),
        ("ready_for_review.payload.json", Kind.REVIEW),
        ("closed.payload.json", Kind.SKIP),
        ("converted_to_draft.payload.json", Kind.SKIP),
    ],
)
def test_decisions_on_real_payloads(name: str, kind: Kind) -> None:
    decision = decide("pull_request", parse_event(load(name)))
    assert decision.kind is kind, decision.reason
    assert decision.reason


def test_drafts_forks_and_other_events() -> None:
    base = load("opened.payload.json")
    draft = copy.deepcopy(base)
    draft["pull_request"]["draft"] = True
    assert "draft" in decide("pull_request", parse_event(draft)).reason
    fork = copy.deepcopy(base)
    fork["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    decision = decide("pull_request", parse_event(fork))
    assert (decision.kind, decision.fork) == (Kind.REVIEW, True)
    deleted = copy.deepcopy(base)
    deleted["pull_request"]["head"]["repo"] = None
    assert decide("pull_request", parse_event(deleted)).fork
    assert decide("workflow_dispatch", parse_event({})).kind is Kind.SMOKE
    assert decide("push", parse_event({})).kind is Kind.SKIP
    labeled = copy.deepcopy(base)
    labeled["action"] = "labeled"
    assert decide("pull_request", parse_event(labeled)).kind is Kind.SKIP


def test_bad_event_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GITHUB_EVENT_PATH is not set"):
        read_event(None)
    with pytest.raises(InputError, match="no such file"):
        read_event(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON event payload"):
        read_event(str(bad))
    with pytest.raises(InputError, match=r"pull_request\.number"):
        parse_event({"action": "opened", "pull_request": {"number": "x"}})


def test_workflow_commands_escape_as_github_requires() -> None:
    assert annotation("error", "line one\nline two 100%") == "::error::line one%0Aline two 100%25"
    assert (
        annotation("warning", "m", file="src/a,b.py", line=3, title="t: x")
        == "::warning file=src/a%2Cb.py,line=3,title=t%3A x::m"
    )
    assert add_mask("sk-secret\nvalue") == "::add-mask::sk-secret%0Avalue"
    with pytest.raises(ValueError, match="error, warning or notice"):
        annotation("debug", "x")
    out = io.StringIO()
    with group(out, "Review: 3 tasks"):
        out.write("inside\n")
    assert out.getvalue() == "::group::Review: 3 tasks\ninside\n::endgroup::\n"


def test_outputs_use_the_multiline_form(tmp_path: Path) -> None:
    text = format_outputs({"comments-posted": 3, "handoff-path": "a\nb"}, delimiter="EOF_X")
    assert text == "comments-posted<<EOF_X\n3\nEOF_X\nhandoff-path<<EOF_X\na\nb\nEOF_X\n"
    with pytest.raises(ValueError, match="delimiter"):
        format_outputs({"x": "has EOF_X inside"}, delimiter="EOF_X")
    out = tmp_path / "out"
    write_outputs(str(out), {"hunks-reviewed": 5})
    write_outputs(None, {"ignored": 1})  # outside Actions: nothing to write
    assert out.read_text().startswith("hunks-reviewed<<ghadelimiter_")


def test_summary_is_capped_at_one_mebibyte(tmp_path: Path) -> None:
    big = "é" * 700_000  # 1.4 MB of UTF-8
    capped = cap_summary(big)
    assert len(capped.encode()) <= 1024 * 1024
    assert capped.endswith("(job summary truncated at GitHub's 1 MiB limit)\n")
    path = tmp_path / "summary.md"
    append_summary(str(path), "## one\n")
    append_summary(str(path), "## two\n")
    assert path.read_text() == "## one\n## two\n"
