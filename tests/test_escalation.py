"""Per-hunk escalation at review time (issue #6 item 2), end to end against the fake upstream:
a hunk planned `logic` on the fast alias, flagged by the fast answer, is reviewed by the deep
alias in the same run; recorded in the review JSON, the summary, the handoff and the usage."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import serve_github
from tests.fakes.upstream import Behavior, FakeUpstream, error

KEY = "sk-canary-gateway-key-0123456789abcdef"
FLAG = Behavior(echo_finding=True, escalate=True)
DIFF = """\
diff --git a/app/util.py b/app/util.py
--- a/app/util.py
+++ b/app/util.py
@@ -10,4 +10,7 @@ def total(items):
     count = 0
     for item in items:
-        count += item
+        if item > 0:
+            count += item
+        else:
+            count -= 1
     return count
diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1,2 +1,3 @@
 # Title
+More words.
 end
"""
ROUTES = """\
version: 1
gateway: {{base_url_env: DEPTHGATE_GATEWAY_URL, api_key_env: DEPTHGATE_GATEWAY_KEY}}
routes:
  review-fast: {{send_model: fast-model, max_input_tokens: 12000, max_output_tokens: 1200}}
  review-deep: {{send_model: deep-model, max_input_tokens: 100000, max_output_tokens: 4000}}
tiers: {{fast: review-fast, logic: review-fast, deep: review-deep}}
limits: {{max_tokens_per_alias: {{review-deep: {deep_budget}}}}}
escalation: {{enabled: {enabled}, max_hunks: {cap}}}
"""


def run(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    enabled: bool = True,
    cap: int = 10,
    deep_budget: int = 600000,
) -> tuple[int, dict[str, Any]]:
    (tmp_path / "pr.diff").write_text(DIFF)
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(ROUTES.format(enabled=str(enabled).lower(), cap=cap, deep_budget=deep_budget))
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", KEY)
    argv = ["review", "--dry-run", "--diff", str(tmp_path / "pr.diff"), "--config", str(cfg)]
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def under_review(call: Any) -> str:
    return str(call.body["messages"][-1]["content"]).split("Context only")[0]


def test_a_flagged_logic_hunk_is_reviewed_by_the_deep_alias(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the first call on review-fast is the planned logic task (app/util.py), which flags its
    # hunk; the second, the fast task (README.md), does not
    fake.script("fast-model", FLAG, Behavior(echo_finding=True))
    fake.script("deep-model", Behavior(echo_finding=True))
    code, doc = run(fake, tmp_path, capsys, monkeypatch)
    assert code == 0
    fast_calls = fake.calls("fast-model")
    assert len(fast_calls) == 2  # the planned logic task and the fast task, both on review-fast
    assert all("Escalation:" in c.body["messages"][0]["content"] for c in fast_calls)
    schema = fast_calls[0].body["response_format"]["json_schema"]["schema"]
    assert "escalate" in schema["required"]
    (deep,) = fake.calls("deep-model")
    assert "app/util.py @@ -10,4 +10,7 @@" in under_review(deep)
    assert "README.md" not in under_review(deep)
    assert "Escalation:" not in deep.body["messages"][0]["content"]  # the deep alias is the top
    (esc,) = doc["escalations"]
    assert esc["path"] == "app/util.py"
    assert (esc["tier"], esc["from_alias"], esc["to_alias"]) == (
        "logic",
        "review-fast",
        "review-deep",
    )
    assert (esc["state"], esc["task"]) == ("reviewed", "escalated-001")
    assert esc["reason"] == "touches request handling; needs a deeper look"
    util = next(h for h in doc["hunks"] if h["path"] == "app/util.py")
    assert (util["state"], util["alias"], util["escalated"]) == ("reviewed", "review-deep", True)
    assert doc["usage"]["review-deep"]["calls"] == 1
    tiers = {(c["path"], c["tier"], c["alias"]) for c in doc["comments"]}
    assert ("app/util.py", "deep", "review-deep") in tiers


def test_escalation_is_capped_and_budgeted(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.default = Behavior(echo_finding=True, escalate=True)
    code, doc = run(fake, tmp_path, capsys, monkeypatch, cap=1)
    assert code == 0
    assert [e["state"] for e in doc["escalations"]] == ["reviewed", "over_cap"]
    assert len(fake.calls("deep-model")) == 1

    fake.requests.clear()
    code, doc = run(fake, tmp_path, capsys, monkeypatch, deep_budget=100)
    assert code == 0
    assert {e["state"] for e in doc["escalations"]} == {"over_budget"}
    assert fake.calls("deep-model") == []


def test_escalation_can_be_switched_off(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.default = Behavior(echo_finding=True, escalate=True)
    code, doc = run(fake, tmp_path, capsys, monkeypatch, enabled=False)
    assert code == 0
    assert doc["escalations"] == []
    assert fake.calls("deep-model") == []
    assert all("Escalation:" not in c.body["messages"][0]["content"] for c in fake.calls())
    schema = fake.calls()[0].body["response_format"]["json_schema"]["schema"]
    assert "escalate" not in schema["properties"]


def test_a_failed_escalation_fails_the_hunk(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.script("fast-model", FLAG, Behavior(echo_finding=True))
    fake.script("deep-model", error(500, "upstream down"))
    code, doc = run(fake, tmp_path, capsys, monkeypatch)
    assert code == 3
    assert doc["escalations"][0]["state"] == "failed(server)"
    note = doc["handoff"]
    assert note["escalations"][0]["state"] == "failed(server)"
    assert [f["path"] for f in note["hunks"]["failed"]] == ["app/util.py"]
    # the fast review of the hunk still stands
    assert any(c["path"] == "app/util.py" and c["alias"] == "review-fast" for c in doc["comments"])


def test_escalations_of_hunks_outside_the_task_are_ignored(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bogus = {
        "findings": [],
        "escalate": [
            {"path": "app/util.py", "line": 999, "reason": "no such line"},
            {"path": "../etc/passwd", "line": 1, "reason": "not in the diff"},
            {"path": "app/util.py", "line": "12", "reason": "a string line"},
        ],
    }
    fake.script("fast-model", Behavior(content=json.dumps(bogus)))
    code, doc = run(fake, tmp_path, capsys, monkeypatch)
    assert code == 0
    assert doc["escalations"] == []
    assert fake.calls("deep-model") == []


def test_the_plan_shows_the_escalation_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pr.diff").write_text(DIFF)
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(textwrap.dedent(ROUTES.format(enabled="true", cap=3, deep_budget=1000)))
    assert (
        main(
            ["plan", "--diff", str(tmp_path / "pr.diff"), "--config", str(cfg), "--format", "json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["escalation"] == {"enabled": True, "max_hunks": 3}


def test_the_sticky_summary_shows_the_escalation(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = [
        {
            "filename": "app/util.py",
            "status": "modified",
            "patch": DIFF.split("\n", 3)[3].split("\ndiff --git", 1)[0],
        },
        {"filename": "README.md", "status": "modified", "patch": "@@ -1,2 +1,3 @@\n # T\n+W\n e"},
    ]
    fake.script("fast-model", FLAG, Behavior(echo_finding=True))
    fake.script("deep-model", Behavior(echo_finding=True))
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(ROUTES.format(enabled="true", cap=10, deep_budget=600000))
    with serve_github() as gh:
        gh.add_pull("octo/app", 3, head_sha="a" * 40, files=files)
        for name, value in {
            "DEPTHGATE_GATEWAY_URL": fake.url,
            "DEPTHGATE_GATEWAY_KEY": KEY,
            "GITHUB_API_URL": gh.url,
            "GITHUB_TOKEN": "ghs_test_write",
            "DEPTHGATE_GITHUB_WRITE_INTERVAL_S": "0",
            "DEPTHGATE_BOT_LOGIN": "github-actions[bot]",
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["review", "--pr", "octo/app#3", "--config", str(cfg)]) == 0
        (summary,) = gh.issue_comments("octo/app", 3)
        assert all(r.status < 400 for r in gh.requests)
    body = summary["body"]
    assert "**Escalated:** 1 hunks flagged for a deeper review" in body
    assert (
        "`app/util.py` `@@ -10,4 +10,7 @@ def total(items):`: `review-fast` → `review-deep`" in body
    )
    assert "| `review-deep` | 1 | 1 |" in body
    capsys.readouterr()
