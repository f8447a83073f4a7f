"""The source port over GitHub: many files in one GraphQL query, every file answered.

The fake GitHub parses the query itself and serves the files it was given; the blob ids it
reports are git's own (``git hash-object``), checked here against real git.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from depthgate.core.ports import GitHubErrorClass, GitHubFailure
from depthgate.core.source import BlobRequest, git_blob_id
from depthgate.github.client import GitHubSettings, PullRequestClient
from tests.fakes.github import FakeGitHub, serve_github

REPO = "octo/app"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with serve_github() as fake:
        fake.add_contents(REPO, "src/app.py", "def run():\n    return 1\n", ref="h" * 40)
        fake.add_contents(REPO, "src/app.py", "def run():\n    return 0\n", ref="b" * 40)
        fake.add_contents(REPO, "logo.png", "\x89PNG\0\0", ref="h" * 40)
        fake.add_contents(REPO, "big.txt", "x" * 5000, ref="h" * 40)
        yield fake
        assert not fake.errors


def _client(gh: FakeGitHub) -> PullRequestClient:
    settings = GitHubSettings(token="ghs_test_read", api_url=gh.url, write_interval_s=0, attempts=1)
    return PullRequestClient(REPO, 1, settings)


def test_blobs_by_path_and_by_oid_in_one_query(gh: FakeGitHub) -> None:
    new = "def run():\n    return 1\n"
    requests = [
        BlobRequest("new", rev="h" * 40, path="src/app.py"),
        BlobRequest("old", rev="b" * 40, path="src/app.py"),
        BlobRequest("by-oid", oid=git_blob_id(new.encode())),
        BlobRequest("gone", rev="h" * 40, path="no/such.py"),
        BlobRequest("png", rev="h" * 40, path="logo.png"),
        BlobRequest("big", rev="h" * 40, path="big.txt"),
    ]
    with _client(gh) as client:
        got = client.read_blobs(requests, max_bytes=4096)
    assert got["new"].text == new
    assert got["old"].text == "def run():\n    return 0\n"
    assert got["by-oid"].text == new
    assert (got["gone"].text, got["gone"].problem) == (None, "not found")
    assert (got["png"].text, got["png"].problem) == (None, "binary file")
    assert (got["big"].text, got["big"].problem) == (None, "file over 4 KB")
    assert len(gh.reads()) == 1  # one GraphQL query for all six
    assert gh.writes() == []


def test_many_files_are_batched(gh: FakeGitHub) -> None:
    requests = [BlobRequest(f"k{n}", rev="h" * 40, path="src/app.py") for n in range(120)]
    with _client(gh) as client:
        got = client.read_blobs(requests, max_bytes=1 << 20)
    assert len(got) == 120
    assert all(b.text for b in got.values())
    assert len(gh.reads()) == 3  # 50 + 50 + 20
    assert gh.graphql_blob_requests == 120


def test_a_repository_the_token_cannot_see_is_a_github_failure(gh: FakeGitHub) -> None:
    gh.add_repo("other/secret")
    gh.add_token("ghs_only_app", write=False, repositories=[REPO])
    request = [BlobRequest("x", rev="h" * 40, path="src/app.py")]
    settings = GitHubSettings(token="ghs_only_app", api_url=gh.url, attempts=1)
    with (
        PullRequestClient("other/secret", 1, settings) as client,
        pytest.raises(GitHubFailure) as err,
    ):
        client.read_blobs(request, max_bytes=1 << 20)
    assert err.value.error_class is GitHubErrorClass.NOT_FOUND


def test_values_travel_as_variables_never_in_the_query(gh: FakeGitHub) -> None:
    hostile = 'x") { id } } mutation { deleteRepository(input: {}) { clientMutationId } } #'
    with _client(gh) as client:
        got = client.read_blobs([BlobRequest("h", rev="h" * 40, path=hostile)], max_bytes=1024)
    assert got["h"].problem == "not found"
    (rec,) = gh.reads()
    assert isinstance(rec.body, dict)
    assert hostile not in rec.body["query"]
    assert hostile in rec.body["variables"]["v0"]


def test_git_blob_id_is_gits_own(tmp_path: Path) -> None:
    for content in (b"", b"hello\n", "naïve\r\n".encode(), b"\0\x01binary"):
        f = tmp_path / "f"
        f.write_bytes(content)
        real = subprocess.run(
            ["git", "hash-object", str(f)], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert git_blob_id(content) == real
