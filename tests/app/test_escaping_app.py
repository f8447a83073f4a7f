"""The App's check run and log under hostile PR, model and gateway text (issue #10 item 3): the
check run's summary and text render clean under GitHub's cmark-gfm, and the log -- where httpx
writes every request's URL -- shows neither the gateway's URL nor its key."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from depthgate.logs import install
from tests.app.test_review_app import REPO, World, world  # noqa: F401 - world is a fixture
from tests.fakes.upstream import error
from tests.markdown_oracle import problems
from tests.test_escaping_e2e import FILES, KEY, hostile_answer

H2 = "c" * 40


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """The App's log as ``depthgate serve`` sets it up: INFO on stderr, redacted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    install({})
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_the_check_run_and_the_log_hold_nothing_live_and_no_secret(
    world: World,  # noqa: F811 - the fixture imported above
    log: io.StringIO,
) -> None:
    world.gh.push(REPO, 7, H2, FILES)
    world.up.script("fast-model", hostile_answer())
    world.up.script("deep-model", error(500, f"upstream failed for {KEY} @victim <img src=x>"))
    world.harness.deliver(world.payload(H2, action="synchronize"))
    world.harness.drain()
    (check,) = world.check_runs(H2)
    assert check["conclusion"] == "failure"
    output = check["output"]
    for part in ("title", "summary", "text"):
        assert problems(output[part] or "", repo=REPO, secrets=(KEY,)) == [], part
    assert "Not reviewed" in output["summary"]
    assert "@victim" in output["text"]  # shown, as code
    assert KEY not in json.dumps(check)
    lines = log.getvalue()
    assert "HTTP Request: POST" in lines  # httpx logged the gateway calls ...
    assert urlsplit(world.up.url).netloc not in lines  # ... without the gateway's address
    assert KEY not in lines
