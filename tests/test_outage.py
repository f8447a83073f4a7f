"""A total gateway outage (500 on every call) through ``review --diff --dry-run`` with the
packaged default config: each alias costs one probe's attempts, the tasks held back behind a
failed probe are never sent, and the handoff names every one of them (issue #12)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from depthgate.cli.main import main
from tests.fakes.upstream import FakeUpstream, error

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml"
EXAMPLE = ROOT / "examples" / "pr.diff"
ATTEMPTS = 4  # retry.attempts of the packaged default config


def test_a_total_outage_costs_one_probe_per_alias(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.default = error(500, "boom")
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", "sk-test-outage")
    handoff = tmp_path / "handoff.json"
    args = ["review", "--dry-run", "--diff", str(EXAMPLE), "--config", str(DEFAULTS)]
    code = main([*args, "--format", "json", "--handoff", str(handoff)])
    out, err = capsys.readouterr()
    assert code == 3
    note = json.loads(handoff.read_text())
    assert json.loads(out)["handoff"] == note

    by_model: dict[str, int] = {}
    for r in fake.calls():
        by_model[r.body["model"]] = by_model.get(r.body["model"], 0) + 1
    aliases = {f["alias"] for f in note["failures"]}
    assert len(by_model) == len(aliases) == 2
    assert all(n <= ATTEMPTS for n in by_model.values()), by_model
    assert len(fake.calls()) <= ATTEMPTS * len(aliases)

    sent = [f for f in note["failures"] if f["sent"]]
    unsent = [f for f in note["failures"] if not f["sent"]]
    assert len(sent) == len(aliases)  # the probes, nothing more
    assert unsent, "the example diff has an alias with two tasks: one must be held back"
    assert {f["error_class"] for f in note["failures"]} == {"server"}
    for f in unsent:
        assert f"`{f['task']}` ({f['alias']}, server)" in err
    assert note["hunks"]["reviewed"] == 0


def test_retries_are_logged_not_printed(
    fake: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """stamina's retry instrumentation goes to the ``depthgate.retry`` logger; the handoff
    Markdown on stderr holds no bare ``stamina.retry_scheduled`` lines."""
    fake.default = error(503, "unavailable")
    monkeypatch.setenv("DEPTHGATE_GATEWAY_URL", fake.url)
    monkeypatch.setenv("DEPTHGATE_GATEWAY_KEY", "sk-test-outage")
    with caplog.at_level(logging.INFO, logger="depthgate.retry"):
        code = main(["review", "--dry-run", "--diff", str(EXAMPLE), "--config", str(DEFAULTS)])
    _, err = capsys.readouterr()
    assert code == 3
    assert "stamina" not in err
    assert "retry_scheduled" not in err
    retries = [r for r in caplog.records if r.name == "depthgate.retry"]
    assert retries
    assert all(r.levelno == logging.INFO for r in retries)
    assert "attempt 2" in retries[0].getMessage()
