"""The pipeline with an in-process gateway: ordering, hunk states, and the property that every
emitted comment is on the diff and passes the sanitizer's invariants."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthgate.core.diff import parse_diff
from depthgate.core.models import ErrorClass, Message
from depthgate.core.pipeline import FINGERPRINT_MARK, ReviewOptions, review
from depthgate.core.plan import build_plan
from depthgate.core.ports import ChatReply, GatewayError, TaskProgress
from depthgate.core.routes import LoadedConfig
from tests.fakes.gateway import FakeGateway
from tests.markdown_oracle import problems

DIFF = (
    "diff --git a/app/run.py b/app/run.py\n--- a/app/run.py\n+++ b/app/run.py\n"
    "@@ -1,3 +1,4 @@\n import subprocess\n-x = 1\n+x = 2\n"
    "+subprocess.run(cmd, shell=True)\n y = 3\n"
    "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
    "@@ -1,1 +1,1 @@\n-Old words.\n+New words.\n"
)


def f(path: str, line: int, **kw: Any) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "side": "RIGHT",
        "severity": "low",
        "category": "bug",
        "title": "t",
        "body": "b",
        **kw,
    }


MORE = DIFF + (
    "diff --git a/docs/a.md b/docs/a.md\n--- a/docs/a.md\n+++ b/docs/a.md\n"
    "@@ -1,1 +1,1 @@\n-a\n+b\n"
    "diff --git a/docs/b.md b/docs/b.md\n--- a/docs/b.md\n+++ b/docs/b.md\n"
    "@@ -1,1 +1,1 @@\n-c\n+d\n"
)


def _answered(alias: str) -> ChatReply:
    return ChatReply(alias, alias, '{"findings": []}', "stop", "m", 10, 5, 250.0, None, 0, False)


def test_aliases_are_probed_at_once(default_config: LoadedConfig) -> None:
    plan = build_plan(parse_diff(DIFF), default_config)
    aliases = {t.alias for t in plan.tasks}
    assert len(aliases) == 2

    class BothProbes(FakeGateway):
        """Answers only once every alias's probe is in flight: one alias after another would
        never get there."""

        def __init__(self) -> None:
            super().__init__(lambda a, m: "")
            self.waiting: set[str] = set()
            self.all_in = asyncio.Event()

        async def chat(self, alias: str, messages: Sequence[Message], **kw: Any) -> ChatReply:
            self.waiting.add(alias)
            if self.waiting == aliases:
                self.all_in.set()
            await asyncio.wait_for(self.all_in.wait(), timeout=5)
            return _answered(alias)

    async def go() -> Any:
        return await review(plan, BothProbes(), ReviewOptions())

    outcome = asyncio.run(go())
    assert {h.state for h in outcome.hunks} == {"reviewed"}


def test_auth_stops_every_task_not_yet_started(default_config: LoadedConfig) -> None:
    plan = build_plan(parse_diff(MORE), default_config)
    by_alias = Counter(t.alias for t in plan.tasks)
    assert len(by_alias) == 2
    assert sum(by_alias.values()) > 2  # tasks beyond the probes

    class Failing(FakeGateway):
        async def chat(self, alias: str, messages: Sequence[Message], **kw: Any) -> ChatReply:
            self.calls.append((alias, list(messages)))
            await asyncio.sleep(0)  # the answer takes a moment, as over a network
            raise GatewayError("no", alias=alias, error_class=ErrorClass.AUTH, http_status=401)

    gw = Failing(lambda a, m: "")
    events: list[TaskProgress] = []
    outcome = asyncio.run(review(plan, gw, ReviewOptions(progress=events.append)))
    # the probes were in flight together; nothing after them was sent
    assert sorted(a for a, _ in gw.calls) == sorted(by_alias)
    assert {h.reason for h in outcome.hunks if h.state == "failed"} == {"auth"}
    assert all(h.state != "reviewed" for h in outcome.hunks)
    ends = Counter(e.status for e in events if e.status != "sent")
    assert ends == {"failed": 2, "not_sent": len(plan.tasks) - 2}
    assert {e.error_class for e in events if e.status != "sent"} == {"auth"}


def test_progress_tells_each_task_as_it_is_sent_and_as_it_ends(
    default_config: LoadedConfig,
) -> None:
    plan = build_plan(parse_diff(MORE), default_config)
    events: list[TaskProgress] = []

    class Slow(FakeGateway):
        async def chat(self, alias: str, messages: Sequence[Message], **kw: Any) -> ChatReply:
            return _answered(alias)

    asyncio.run(review(plan, Slow(lambda a, m: ""), ReviewOptions(progress=events.append)))
    tasks = {t.id: t for t in plan.tasks}
    assert [e.status for e in events].count("sent") == len(tasks)
    for e in events:
        t = tasks[e.task_id]
        assert (e.alias, e.tier, e.hunks) == (t.alias, t.tier.value, len(t.hunks))
    for task_id in tasks:
        mine = [e for e in events if e.task_id == task_id]
        assert [e.status for e in mine] == ["sent", "reviewed"]
        assert mine[1].latency_ms == 250.0
        assert mine[1].findings == 0


def test_findings_outside_the_tasks_hunks_go_to_the_summary(default_config: LoadedConfig) -> None:
    plan = build_plan(parse_diff(DIFF), default_config)
    # every task answers about both files; each file's comment must come from its own task
    gw = FakeGateway(lambda a, m: json.dumps({"findings": [f("app/run.py", 3), f("README.md", 1)]}))
    outcome = asyncio.run(review(plan, gw, ReviewOptions()))
    assert sorted((c.path, c.provenance.alias) for c in outcome.comments) == [
        ("README.md", "review-fast"),
        ("app/run.py", "review-deep"),
    ]
    assert {s.reason for s in outcome.summary_only} == {"outside_task_hunks"}
    assert outcome.complete
    assert {h.state for h in outcome.hunks} == {"reviewed"}


def test_fingerprints_are_stable_and_deduplicate(default_config: LoadedConfig) -> None:
    plan = build_plan(parse_diff(DIFF), default_config)
    answer = json.dumps({"findings": [f("app/run.py", 3), f("app/run.py", 3)]})
    one = asyncio.run(review(plan, FakeGateway(lambda a, m: answer), ReviewOptions()))
    two = asyncio.run(review(plan, FakeGateway(lambda a, m: answer), ReviewOptions()))
    assert len(one.comments) == 1
    assert [c.fingerprint for c in one.comments] == [c.fingerprint for c in two.comments]
    first = one.comments[0]
    assert (
        f"<!-- {FINGERPRINT_MARK}{first.fingerprint} tier={first.provenance.tier} -->" in first.body
    )


# ---------------------------------------------------------------------------------------------

_FRAGMENTS = [
    *"ab @/!<>[]()`#*\n",
    "\u202e",
    "\u200b",
    "ghp_" + "a" * 36,
    "http://x.y/",
    "![i](",
    "<!--",
    "@me",
    "```",
]
_TEXT = st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join)


@st.composite
def diffs(draw: st.DrawFn) -> str:
    parts = []
    for n in range(draw(st.integers(1, 3))):
        path = f"d{n}/f{n}.py"
        old = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5))
        new = draw(st.lists(st.sampled_from(["a", "x", "y"]), min_size=1, max_size=5))
        start = draw(st.integers(1, 50))
        body = "".join(f"-{x}\n" for x in old) + "".join(f"+{x}\n" for x in new)
        parts.append(
            f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{start},{len(old)} +{start},{len(new)} @@\n{body}"
        )
    return "".join(parts)


@st.composite
def findings(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        out.append(
            {
                "path": draw(
                    st.sampled_from(["d0/f0.py", "d1/f1.py", "d2/f2.py", "../x", "/abs", "zz.py"])
                ),
                "line": draw(st.integers(-2, 60)),
                "side": draw(st.sampled_from(["RIGHT", "LEFT"])),
                "start_line": draw(st.one_of(st.none(), st.integers(-1, 60))),
                "severity": "medium",
                "category": "bug",
                "title": draw(_TEXT) or "t",
                "body": draw(_TEXT) or "b",
                "suggestion": draw(st.one_of(st.none(), _TEXT)),
            }
        )
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=diffs(), answer=findings())
def test_every_comment_is_on_the_diff_and_sanitized(
    default_config: LoadedConfig, text: str, answer: list[dict[str, Any]]
) -> None:
    diff = parse_diff(text)
    plan = build_plan(diff, default_config)
    content = json.dumps({"findings": answer})
    outcome = asyncio.run(review(plan, FakeGateway(lambda a, m: content), ReviewOptions()))
    for c in outcome.comments:
        hunk = diff.anchors.get((c.path, c.side, c.line))  # type: ignore[call-overload]
        assert hunk is not None
        if c.start_line is not None:
            assert c.start_line < c.line
            assert diff.anchors.get((c.path, c.start_side, c.start_line)) is hunk  # type: ignore[call-overload]
        visible, footer = c.body.rsplit("\n\n<sub>depthgate · ", 1)
        mark = f"<!-- {FINGERPRINT_MARK}{c.fingerprint} tier={c.provenance.tier} -->"
        assert footer.endswith(f"</sub>\n{mark}")
        # GitHub's renderer, not the sanitizer's scanner, judges what is posted; the footer is
        # depthgate's own HTML
        assert problems(visible, own_html=False) == []
        assert problems(c.body) == []
    for s in outcome.summary_only:
        for text_ in (s.finding.title, s.finding.body):
            assert problems(text_, own_html=False) == []


def test_suggestions_stay_verbatim_and_footer_survives(default_config: LoadedConfig) -> None:
    plan = build_plan(parse_diff(DIFF), default_config)
    fix = "subprocess.run([cmd], check=True) if a < b else None  # @nobody"
    answer = json.dumps(
        {"findings": [f("app/run.py", 3, suggestion=fix, body="Use <b>a</b> list")]}
    )
    outcome = asyncio.run(review(plan, FakeGateway(lambda a, m: answer), ReviewOptions()))
    (comment,) = outcome.comments
    assert f"```suggestion\n{fix}\n```" in comment.body
    assert "<b>" not in comment.body
    assert "<sub>depthgate · deep · review-deep · fake-model</sub>" in comment.body


def test_a_declared_fallback_that_served_is_recorded(default_config: LoadedConfig) -> None:
    from dataclasses import replace  # noqa: PLC0415

    plan = build_plan(parse_diff(DIFF), default_config)
    answer = json.dumps({"findings": [f("app/run.py", 3)]})

    class ServedByBackup(FakeGateway):
        async def chat(self, alias: str, messages: Sequence[Message], **kw: Any):  # type: ignore[no-untyped-def]
            reply = await super().chat(alias, messages, **kw)
            return replace(reply, served_by="review-backup") if alias == "review-deep" else reply

    outcome = asyncio.run(review(plan, ServedByBackup(lambda a, m: answer), ReviewOptions()))
    assert outcome.fallback_used == "review-backup"
    (comment,) = [c for c in outcome.comments if c.path == "app/run.py"]
    assert comment.provenance.alias == "review-backup"
    assert "review-backup" in comment.body
