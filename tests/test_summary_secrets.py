"""What the summary quotes from the model (an escalation's reason) is sanitized with the run's
policy -- the secrets it holds included -- not with a default one: a model that read the key
somewhere cannot post it in the summary (issue #12: survived the mutation run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from depthgate.cli.main import main
from tests.fakes.github import serve_github
from tests.fakes.samples import FILES, routes
from tests.fakes.upstream import Behavior, FakeUpstream

KEY = "plain-gateway-secret-0123456789"  # no credential shape: only the policy knows it


def test_an_escalation_reason_quoting_the_key_is_redacted(
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reason = f"the code logs the gateway key {KEY}; needs a deeper look"
    escalate = {"findings": [], "escalate": [{"path": "app/util.py", "line": 11, "reason": reason}]}
    fake.script("fast-model", Behavior(content=json.dumps(escalate)))
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(routes())
    with serve_github() as gh:
        gh.add_pull("octo/app", 5, head_sha="1" * 40, files=FILES)
        monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
        monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", KEY)
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_write")
        monkeypatch.setenv("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "0")
        args = ["review", "--pr", "octo/app#5", "--config", str(cfg), "--format", "json"]
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out)["escalations"]
        (summary,) = gh.issue_comments("octo/app", 5)
        body = summary["body"]
        assert "the code logs the gateway key \\[REDACTED\\]; needs a deeper look" in body
        assert KEY not in body
        assert not gh.errors
