"""The sticky summary: rendering, the hidden state marker, and GitHub's size limit."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from depthgate.core.diff import parse_diff
from depthgate.core.models import ErrorClass
from depthgate.core.pipeline import ReviewOptions, ReviewOutcome, review
from depthgate.core.plan import build_plan
from depthgate.core.ports import GatewayError
from depthgate.core.routes import LoadedConfig
from depthgate.core.summary import (
    MAX_CHARS,
    MAX_FPS,
    SummaryState,
    fingerprints_in,
    parse_state,
    render_summary,
)
from tests.fakes.gateway import FakeGateway

DIFF = (
    "diff --git a/app/run.py b/app/run.py\n--- a/app/run.py\n+++ b/app/run.py\n"
    "@@ -1,2 +1,3 @@\n import os\n+os.system(cmd)\n x = 1\n"
    "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
    "@@ -1,1 +1,1 @@\n-Old.\n+New.\n"
    "diff --git a/package-lock.json b/package-lock.json\n--- a/package-lock.json\n"
    '+++ b/package-lock.json\n@@ -1,1 +1,1 @@\n-{}\n+{"a": 1}\n'
)


def finding(path: str, line: int, **kw: Any) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "side": "RIGHT",
        "severity": "high",
        "category": "security",
        "title": "Shell",
        "body": "b",
        **kw,
    }


def outcome(default_config: LoadedConfig, answer: str, fail_fast: bool = False) -> ReviewOutcome:
    plan = build_plan(parse_diff(DIFF), default_config)

    class Gw(FakeGateway):
        async def chat(self, alias: str, messages: Any, **kw: Any):  # type: ignore[no-untyped-def]
            if fail_fast and alias == "review-fast":
                raise GatewayError("x", alias=alias, error_class=ErrorClass.SERVER, http_status=500)
            return await super().chat(alias, messages, **kw)

    return asyncio.run(review(plan, Gw(lambda a, m: answer), ReviewOptions()))


def test_summary_shows_routing_skips_and_unplaced_findings(default_config: LoadedConfig) -> None:
    answer = json.dumps({"findings": [finding("app/run.py", 2), finding("app/run.py", 99)]})
    result = outcome(default_config, answer)
    body = render_summary(
        result, SummaryState(head_sha="abc123", fingerprints=frozenset({"f" * 20}))
    )
    assert "| `review-deep` | 1 |" in body
    assert "**Skipped files:** `package-lock.json` (lockfile)" in body
    assert "line_not_in_diff" in body
    assert "Partial review" not in body
    state = parse_state(body)
    assert state == SummaryState(head_sha="abc123", fingerprints=frozenset({"f" * 20}))
    assert fingerprints_in(c.body for c in result.comments) == {
        c.fingerprint for c in result.comments
    }


def test_partial_reviews_say_so_first(default_config: LoadedConfig) -> None:
    result = outcome(default_config, json.dumps({"findings": []}), fail_fast=True)
    body = render_summary(result, SummaryState(head_sha="h"))
    assert "**Partial review: 1/3 hunks reviewed.**" in body


def test_the_marker_survives_truncation_and_damage(default_config: LoadedConfig) -> None:
    many = [finding("app/run.py", 99, title="t" * 190, body="x") for _ in range(50)]
    result = outcome(default_config, json.dumps({"findings": many}))
    result.summary_only = result.summary_only * 100  # a huge summary
    fps = frozenset(f"{i:020x}" for i in range(5000))
    hunks = frozenset(hashlib.sha256(b"%d" % i).hexdigest()[:12] for i in range(5000))
    body = render_summary(result, SummaryState(head_sha="h", fingerprints=fps, hunks=hunks))
    assert len(body) <= MAX_CHARS
    assert "summary truncated" in body
    assert "Findings not placed inline" in body  # the visible part keeps its room
    state = parse_state(body)
    assert state is not None
    assert len(state.fingerprints) == MAX_FPS
    assert state.reviewed(hunks) == hunks  # every reviewed hunk, however many
    assert not state.reviewed(hashlib.sha256(b"x%d" % i).hexdigest()[:12] for i in range(5000))
    assert parse_state("no marker here") is None
    assert parse_state("<!-- depthgate:summary {not json} -->") is None
    assert parse_state('<!-- depthgate:summary {"head": 3} -->') is None


def test_counts_are_worded_for_one_and_for_many() -> None:
    from depthgate.core.wording import plural  # noqa: PLC0415

    assert [plural(n, "inline comment") for n in (0, 1, 2)] == [
        "0 inline comments",
        "1 inline comment",
        "2 inline comments",
    ]
    assert [plural(n, "retry") for n in (1, 3)] == ["1 retry", "3 retries"]
    assert plural(2, "day") == "2 days"


def test_a_failure_that_was_not_retried_does_not_say_after_0_retries() -> None:
    from depthgate.core.handoff import next_action  # noqa: PLC0415
    from depthgate.core.models import ErrorClass  # noqa: PLC0415
    from depthgate.core.pipeline import TaskFailure  # noqa: PLC0415

    def text(cls: ErrorClass, retries: int) -> str:
        return next_action(TaskFailure("t1", "review-fast", cls, "x", 500, retries=retries))

    for cls in (ErrorClass.SERVER, ErrorClass.TIMEOUT, ErrorClass.RATE_LIMITED):
        assert "retries" not in text(cls, 0)
        assert "retry" not in text(cls, 0).replace("Retry-After", "")
        assert "after 1 retry" in text(cls, 1)
        assert "after 3 retries" in text(cls, 3)


def test_a_version_1_marker_still_reads() -> None:
    body = '<!-- depthgate:summary {"v":1,"head":"h","fps":["ab"],"hunks":["0123456789ab"]} -->'
    state = parse_state(body)
    assert state is not None
    assert state.reviewed(["0123456789ab", "ffffffffffff"]) == {"0123456789ab"}


def test_the_marker_keeps_full_keys_while_they_fit() -> None:
    keys = frozenset(hashlib.sha256(b"%d" % i).hexdigest()[:12] for i in range(2000))
    marker = SummaryState("h", hunks=keys).to_marker()
    assert len(marker) < 16_100  # 8 characters a hunk
    state = parse_state(marker)
    assert state is not None
    assert state.hunks == keys
