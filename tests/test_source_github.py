"""The source port over GitHub (Action and ``review --pr``) against the fake GitHub: the Actions
checkout where its files hash to the head blobs of the files API (no extra read), one GraphQL
query for the rest, a 3-file PR in at most 6 GitHub reads, caps, and what the summary says."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from depthgate.cli.flags import Flags
from depthgate.cli.ghrun import resolve, run_review
from depthgate.configfile import load_config
from depthgate.core.diff import parse_github_files
from depthgate.core.source import BlobRequest, SourceCaps, SourceMode, git_blob_id
from depthgate.github.client import GitHubSettings, PullRequestClient
from depthgate.github.source import pr_sources, source_port
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import routes
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.gitrepo import GitRepo

REPO, N = "octo/app", 3
KEY = "sk-canary-gateway-key-0123456789abcdef"
AUTH_V1 = "import os\n\n\ndef run(cmd):\n    checked = cmd.strip()\n    return os.system(checked)\n"
AUTH_V2 = AUTH_V1.replace("os.system(checked)", "os.system(cmd)")
UTIL_V1 = "def f():\n    a = 1\n    c = 3\n    return a + c\n"
UTIL_V2 = UTIL_V1.replace("    c = 3\n", "    b = 2\n    c = 3\n")
DOCS_V1 = "# Title\n\nend\n"
DOCS_V2 = "# Title\n\nMore words.\nend\n"
OLD = {"app/auth.py": AUTH_V1, "app/util.py": UTIL_V1, "README.md": DOCS_V1}
NEW = {"app/auth.py": AUTH_V2, "app/util.py": UTIL_V2, "README.md": DOCS_V2}


class World:
    def __init__(self, gh: FakeGitHub, repo: GitRepo, base: str, head: str) -> None:
        self.gh, self.repo, self.base, self.head = gh, repo, base, head

    def files(self) -> list[dict[str, object]]:
        return [
            {
                "filename": p,
                "status": "modified",
                "sha": git_blob_id(NEW[p].encode()),
                "patch": self.repo.patch_of(self.base, self.head, p),
            }
            for p in NEW
        ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    g = GitRepo(tmp_path / "checkout")
    base = g.commit(OLD, "base")
    head = g.commit(NEW, "head")
    with serve_github() as gh:
        w = World(gh, g, base, head)
        gh.add_pull(REPO, N, head_sha=head, base_sha=base, files=w.files(), title="Run", body="")
        for p, old in OLD.items():
            gh.add_contents(REPO, p, old, ref=base)
            gh.add_contents(REPO, p, NEW[p], ref=head)
        yield w
        assert not gh.errors


def client(gh: FakeGitHub) -> PullRequestClient:
    settings = GitHubSettings(token="ghs_test_read", api_url=gh.url, write_interval_s=0, attempts=1)
    return PullRequestClient(REPO, N, settings)


def graphql(gh: FakeGitHub) -> list[object]:
    return [r for r in gh.requests if r.path == "/graphql"]


def test_checkout_files_that_hash_to_the_head_blobs_are_read_locally(world: World) -> None:
    with client(world.gh) as c:
        info = c.info()
        diff = parse_github_files(c.files())
        world.gh.requests.clear()
        sources = pr_sources(c, info, diff, caps=SourceCaps(), checkout=world.repo.root)
    assert sources.mode is SourceMode.CHECKOUT
    for p, new in NEW.items():
        assert (sources.files[p].old_text, sources.files[p].new_text) == (OLD[p], new)
    (query,) = graphql(world.gh)  # the old sides, all in one query; no new side fetched
    assert query.body["query"].count("object(") == 3  # type: ignore[attr-defined]


def test_a_checkout_that_moved_on_is_fetched_instead(world: World) -> None:
    (world.repo.root / "app/util.py").write_text(UTIL_V2 + "# local edit\n")
    with client(world.gh) as c:
        info = c.info()
        diff = parse_github_files(c.files())
        world.gh.requests.clear()
        sources = pr_sources(c, info, diff, caps=SourceCaps(), checkout=world.repo.root)
    assert sources.files["app/util.py"].new_text == UTIL_V2  # GitHub's, not the local edit
    (query,) = graphql(world.gh)
    assert query.body["query"].count("object(") == 4  # type: ignore[attr-defined]
    assert any("the rest from GitHub" in n for n in sources.notes)


def test_without_a_checkout_everything_comes_from_one_query(world: World) -> None:
    with client(world.gh) as c:
        info = c.info()
        diff = parse_github_files(c.files())
        world.gh.requests.clear()
        sources = pr_sources(c, info, diff, caps=SourceCaps())
    assert sources.mode is SourceMode.GITHUB
    assert all(f.missing is None for f in sources.files.values())
    assert len(world.gh.reads()) == 1


def test_caps_and_a_moved_base_fall_back_to_the_diff(world: World) -> None:
    world.gh.add_contents(REPO, "app/util.py", "x = 0\n" + UTIL_V1, ref=world.base)
    with client(world.gh) as c:
        info = c.info()
        diff = parse_github_files(c.files())
        sources = pr_sources(c, info, diff, caps=SourceCaps(file_bytes=60))
    assert sources.files["app/auth.py"].missing == "file over 60 bytes"
    assert sources.files["app/util.py"].missing == "the base branch moved past the diff's old side"
    assert sources.files["README.md"].missing is None


@pytest.fixture
def up(fake: FakeUpstream) -> FakeUpstream:
    fake.default = Behavior(echo_finding=True)
    return fake


@pytest.mark.parametrize("checkout", [True, False])
def test_a_three_file_pr_review_stays_within_six_github_reads(
    world: World,
    up: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checkout: bool,
) -> None:
    cfg_path = tmp_path / "routes.yaml"
    limits = "limits: {max_comments: 30, source_max_file_bytes: 60}"
    cfg_path.write_text(routes().replace("limits: {max_comments: 30}", limits))
    env = {
        "DEPTHGATE_GATEWAY_URL": up.url,
        "DEPTHGATE_GATEWAY_KEY": KEY,
        "GITHUB_API_URL": world.gh.url,
        "GITHUB_TOKEN": "ghs_test_write",
        "DEPTHGATE_GITHUB_WRITE_INTERVAL_S": "0",
        "DEPTHGATE_BOT_LOGIN": "github-actions[bot]",
    }
    loaded = load_config(str(cfg_path))
    cfg = resolve(Flags(), loaded, env, command="test", bot_login="github-actions[bot]")
    world.gh.requests.clear()
    out, err = io.StringIO(), io.StringIO()
    where = world.repo.root if checkout else None
    assert run_review(REPO, N, cfg, out, err, checkout=where) == 0, err.getvalue()
    assert len(world.gh.reads()) <= 6, [r.path for r in world.gh.reads()]
    (query,) = graphql(world.gh)
    # the checkout holds every head file under the cap, and no hunk only deletes: the one file
    # read is app/auth.py, which the checkout could not give (over the cap); without a
    # checkout, both sides of every file, in the same one query
    assert query.body["query"].count("object(") == (1 if checkout else 6)  # type: ignore[attr-defined]
    (summary,) = world.gh.issue_comments(REPO, N)
    mode = "checkout" if checkout else "github"
    assert f"**Context:** source from {mode}" in summary["body"]
    # app/auth.py is 78 bytes (82 before): over the cap, so its review had the diff alone
    assert "`app/auth.py` (context: diff only -- file over 60 bytes)" in summary["body"]
    prompts = [str(c.body["messages"][-1]["content"]) for c in up.calls()]
    # the task names the real definition, from the whole file
    assert any(
        "app/util.py @@ -1,4 +1,5 @@ [python, in function f (lines 1-5)]" in p for p in prompts
    )


def test_with_a_checkout_only_the_old_sides_context_needs_are_read(
    world: World, tmp_path: Path
) -> None:
    # app/util.py loses a line and gains none: its context comes from the old side
    old = UTIL_V1 + "    extra = 1\n"
    world.gh.add_contents(REPO, "app/util.py", old, ref=world.base)
    files = world.files()
    files[1] = {
        **files[1],
        "sha": git_blob_id(UTIL_V1.encode()),
        "patch": "@@ -3,3 +3,2 @@ def f():\n     c = 3\n     return a + c\n-    extra = 1",
    }
    (world.repo.root / "app/util.py").write_text(UTIL_V1)
    with client(world.gh) as c:
        info = c.info()
        diff = parse_github_files(files)
        world.gh.requests.clear()
        sources = pr_sources(
            c, info, diff, caps=SourceCaps(), checkout=world.repo.root, old_sides="needed"
        )
    (query,) = graphql(world.gh)
    assert query.body["query"].count("object(") == 1  # type: ignore[attr-defined]
    assert sources.files["app/util.py"].old_text == old
    assert sources.files["app/auth.py"].old_text is None  # not needed, not read


def test_the_ports_extra_files_ride_in_the_changed_files_query_or_come_alone(
    world: World,
) -> None:
    world.gh.add_contents(REPO, "AGENTS.md", "Check tenants.\n", ref=world.base)
    limits = load_config(None).config.limits
    also = [BlobRequest("guideline:AGENTS.md", rev=world.base, path="AGENTS.md")]
    with client(world.gh) as c:
        info = c.info()
        diff = parse_github_files(c.files())
        world.gh.requests.clear()
        port = source_port(c, limits, also=also)
        port(info, diff)
        assert port.extra()["guideline:AGENTS.md"].text == "Check tenants.\n"
        assert len(world.gh.reads()) == 1  # one query for the changed files and AGENTS.md
        # with the checkout at the head, nothing else needs GitHub: AGENTS.md alone, once
        world.gh.requests.clear()
        local = source_port(c, limits, checkout=world.repo.root, also=also)
        local(info, diff)
        assert world.gh.reads() == []
        assert local.extra()["guideline:AGENTS.md"].text == "Check tenants.\n"
        local.extra()
        assert len(world.gh.reads()) == 1
        # a failed read of them is said per file, never a failed review
        world.gh.fail_next("POST", r"^/graphql$", 401, times=5)
        failing = source_port(c, limits, checkout=world.repo.root, also=also)
        failing(info, diff)
        problem = failing.extra()["guideline:AGENTS.md"].problem
    assert problem is not None
    assert problem.startswith("could not be read")
