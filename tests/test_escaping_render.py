"""The sticky summary and the handoff note rendered from hostile input of every kind, drawn by
hypothesis: file names and hunk-header text from the diff, paths, titles and escalation reasons
from the model, request ids and model names from the gateway, all through the real pipeline
(parse, plan, review with an in-process gateway), judged by GitHub's cmark-gfm
(tests/markdown_oracle.py). The JSON outputs hold no secret either."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from depthgate.core.diff import parse_diff
from depthgate.core.errors import InputError
from depthgate.core.handoff import RunContext, annotation, build_handoff, render_markdown
from depthgate.core.models import ErrorClass, Message
from depthgate.core.pipeline import ReviewOptions, review
from depthgate.core.plan import build_plan
from depthgate.core.ports import GatewayError
from depthgate.core.report import outcome_to_dict
from depthgate.core.routes import LoadedConfig
from depthgate.core.sanitize import SanitizePolicy
from depthgate.core.summary import SummaryState, render_summary
from tests.fakes.gateway import FakeGateway
from tests.markdown_oracle import problems

KEY = "sk-canary-gateway-key-" + "0123456789abcdef"
REPO = "octo/app"
PIECES = [
    "`",
    "``",
    "```",
    "@victim",
    "@org/team",
    "<img src=https://evil.example/p.png>",
    "[x](https://evil.example)",
    "![i](https://evil.example/i.png)",
    "<!-- c -->",
    "<details>",
    "</sub>",
    "\u202e",
    "\u200b",
    "|",
    "*",
    "_",
    "~",
    "$",
    "&#64;",
    "\\",
    "#",
    "- ",
    "1. ",
    "www.evil.example",
    "http://evil.example",
    "me@evil.example",
    KEY,
]
# one line, no NUL: what a path or a hunk header can hold after git's quoting is undone
LINE = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r\0")),
    ),
    min_size=1,
    max_size=8,
).map("".join)
PATH = LINE.map(lambda s: "d/" + s.replace(" ", "_").replace("\t", "_").strip("/") + ".py")


def diff_text(path: str, header: str, binary: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,2 +1,3 @@ {header}\n import os\n+os.system(cmd)\n x = 1\n"
        f"diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
        f"@@ -1,1 +1,2 @@ {header}\n # Title\n+More words.\n"
        f"diff --git a/{binary} b/{binary}\nBinary files a/{binary} and b/{binary} differ\n"
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATH, header=LINE, binary=PATH, field=LINE, fail=st.booleans())
# found by hypothesis: the gateway's model name, with the key in it, in the comment footer
@example(path="d/x.py", header="", binary="d/y.py", field=f"@victim{KEY}", fail=False)
def test_summary_and_handoff_render_clean_whatever_the_input(
    default_config: LoadedConfig, path: str, header: str, binary: str, field: str, fail: bool
) -> None:
    try:
        diff = parse_diff(diff_text(path, header, binary).encode())
    except InputError:
        assume(False)
    assume(len(diff.files) == 3)
    plan = build_plan(diff, default_config)
    first = plan.diff.files[0]

    def answer(alias: str, messages: Sequence[Message]) -> str:
        if fail and "os.system" in str(messages[-1]["content"]):
            raise GatewayError(
                f"upstream said {field}",
                alias=alias,
                error_class=ErrorClass.SERVER,
                http_status=500,
                request_id=field[:60],
                response_model=field[:60],
            )
        findings = [
            {"path": p, "line": 2, "side": "RIGHT", "severity": "high", "category": "bug",
             "title": f"t {field}", "body": f"b {field}"}
            for p in (first.path, field or "x", f"{field}.py")
        ]  # fmt: skip
        escalate = [{"path": first.path, "line": 2, "reason": f"r {field}"}]
        return json.dumps({"findings": findings, "escalate": escalate})

    policy = SanitizePolicy(repo=REPO, secrets=(KEY,))
    options = ReviewOptions(sanitize=policy)
    outcome = asyncio.run(review(plan, FakeGateway(answer, model=field[:60]), options))
    summary = render_summary(outcome, SummaryState("a" * 40), policy=policy)
    assert problems(summary, repo=REPO, secrets=(KEY,)) == []
    for comment in outcome.comments:
        assert problems(comment.body, repo=REPO, secrets=(KEY,)) == []
    note = None
    if not outcome.complete:
        ctx = RunContext(command=f"depthgate review {field}", pr=f"{REPO}#1", secrets=(KEY,))
        note = build_handoff(outcome, ctx)
        assert problems(render_markdown(note, (KEY,)), repo=REPO, secrets=(KEY,)) == []
        assert KEY not in annotation(note)
        assert KEY not in json.dumps(note, ensure_ascii=False)
    assert KEY not in json.dumps(outcome_to_dict(outcome, note, (KEY,)), ensure_ascii=False)
