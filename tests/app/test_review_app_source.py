"""The App reads the code around the change from GitHub with its installation token: one
GraphQL query for every changed file, both sides, and the check run says where context came
from."""

from __future__ import annotations

from tests.app.test_review_app import REPO, World, world
from tests.fakes.samples import FILES

__all__ = ["world"]  # the fixture, shared with the App's other end-to-end tests

AUTH_OLD = "import os\nx = 1\ny = 2\n"
AUTH_NEW = "import os\ndef run(cmd):\n    return os.system(cmd)\nx = 1\ny = 2\n"


def test_the_app_fetches_the_changed_files_with_the_installation_token(world: World) -> None:
    h, gh = world.harness, world.gh
    head = world.payload()["pull_request"]["head"]["sha"]
    base = "b" * 40  # the fake's default base commit
    gh.add_contents(REPO, "app/auth.py", AUTH_OLD, ref=base)
    gh.add_contents(REPO, "app/auth.py", AUTH_NEW, ref=head)
    assert h.deliver(world.payload()) == "queued"
    h.drain()
    (query,) = [r for r in gh.requests if r.path == "/graphql"]
    assert query.actor == "depthgate[bot]"  # the installation token, not a user's
    assert query.body["query"].count("object(") == 2 * len(FILES)  # both sides, every file
    (check,) = world.check_runs()
    assert check["conclusion"] == "success"
    summary = check["output"]["summary"]
    assert "**Context:** source from github" in summary
    # the files the fake has no content for are reviewed from their diff, and say so
    assert "`app/util.py` (context: diff only -- not found)" in summary
    assert "`app/auth.py`" not in summary.split("**Context:**")[1].split("\n")[0]
