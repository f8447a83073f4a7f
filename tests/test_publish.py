"""The review request: always COMMENT, pinned to the head, no duplicates, GitHub's shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from depthgate.core.diff import parse_diff
from depthgate.core.models import Comment, Provenance
from depthgate.core.pipeline import ReviewOptions, review
from depthgate.core.plan import build_plan
from depthgate.core.publish import EVENT, MAX_BODY, comment_json, review_payload
from depthgate.core.routes import LoadedConfig
from tests.fakes.gateway import FakeGateway

DIFF = (
    "diff --git a/app/run.py b/app/run.py\n--- a/app/run.py\n+++ b/app/run.py\n"
    "@@ -1,2 +1,4 @@\n import os\n+os.system(cmd)\n+os.system(other)\n x = 1\n"
)


def test_payload_is_comment_pinned_and_deduplicated(default_config: LoadedConfig) -> None:
    def f(line: int, **kw: Any) -> dict[str, Any]:
        return {
            "path": "app/run.py",
            "line": line,
            "side": "RIGHT",
            "severity": "high",
            "category": "security",
            "title": f"t{line}",
            "body": "b",
            **kw,
        }

    # the model asks for an approval and a range; neither can reach GitHub as such
    answer = json.dumps({"event": "APPROVE", "findings": [f(2), f(3, start_line=2)]})
    plan = build_plan(parse_diff(DIFF), default_config)
    outcome = asyncio.run(review(plan, FakeGateway(lambda a, m: answer), ReviewOptions()))
    first, ranged = outcome.comments
    payload = review_payload(
        outcome.comments,
        head_sha="a" * 40,
        body="summary",
        existing_fingerprints=frozenset({first.fingerprint}),
    )
    doc = payload.to_json()
    assert doc["event"] == EVENT == "COMMENT"
    assert doc["commit_id"] == "a" * 40
    assert payload.duplicates == 1
    assert doc["comments"] == [
        {
            "path": "app/run.py",
            "body": ranged.body,
            "line": 3,
            "side": "RIGHT",
            "start_line": 2,
            "start_side": "RIGHT",
        }
    ]
    single = review_payload([first], head_sha="b" * 40, body="x" * 70_000).to_json()
    assert "start_line" not in single["comments"][0]
    assert len(single["body"]) <= 65_536


def comment(line: int, start: int | None = None, start_side: str | None = None) -> Comment:
    return Comment(
        path="app/run.py",
        line=line,
        side="RIGHT",
        start_line=start,
        start_side=start_side,
        body="b",
        severity="high",
        category="bug",
        provenance=Provenance("fast", "review-fast", None),
        fingerprint=f"fp{line}{start}",
    )


def test_ranges_take_githubs_shape() -> None:
    """GitHub: ``start_line`` must precede ``line`` (``start_line == line`` is a 422), and a
    range names the side it starts on."""
    assert comment_json(comment(5, start=5)) == {
        "path": "app/run.py",
        "body": "b",
        "line": 5,
        "side": "RIGHT",
    }
    ranged = comment_json(comment(5, start=3))
    assert (ranged["start_line"], ranged["start_side"]) == (3, "RIGHT")
    assert comment_json(comment(5, start=3, start_side="LEFT"))["start_side"] == "LEFT"


def test_the_review_body_is_cut_to_githubs_cap_with_a_note() -> None:
    at_cap = review_payload([], head_sha="h", body="x" * MAX_BODY)
    assert at_cap.body == "x" * MAX_BODY
    over = review_payload([], head_sha="h", body="x" * (MAX_BODY + 1)).body
    assert len(over) <= MAX_BODY
    assert over.endswith("x\n\n… (truncated by depthgate)")
