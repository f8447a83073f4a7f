"""The one run step (depthgate.cli.run) seen from its three command-line surfaces: the same
findings under the same config give the same exit code and the same handoff shape in
``review --diff --dry-run``, ``review --pr`` and the Action -- against the fake upstream and the
fake GitHub over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from depthgate.cli.main import main
from tests.fakes.github import FakeGitHub, serve_github
from tests.fakes.samples import FILES, routes
from tests.fakes.upstream import Behavior, FakeUpstream, answer, error

PAYLOADS = Path(__file__).resolve().parent / "data" / "webhooks" / "pull_request"
EVENT = json.loads((PAYLOADS / "opened.payload.json").read_text())
REPO = EVENT["repository"]["full_name"]
NUMBER = EVENT["pull_request"]["number"]
HEAD = EVENT["pull_request"]["head"]["sha"]
KEY = "sk-canary-gateway-key-0123456789abcdef"
SURFACES = ("diff", "pr", "action")


def diff_text(files: list[dict[str, Any]]) -> str:
    """The PR's files as the unified diff ``git diff`` would print."""
    parts = []
    for f in files:
        p = f["filename"]
        parts.append(f"diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n{f['patch']}\n")
    return "".join(parts)


def finding(severity: str, line: int, path: str = "app/auth.py") -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "severity": severity,
        "category": "security",
        "title": f"a {severity} finding",
        "body": "Runs a shell command built from its argument.",
    }


class Surfaces:
    def __init__(
        self,
        gh: FakeGitHub,
        up: FakeUpstream,
        tmp: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.gh, self.up, self.tmp, self.mp, self.capsys = gh, up, tmp, monkeypatch, capsys
        self.config = tmp / "routes.yaml"
        self.config.write_text(routes())
        self.diff = tmp / "pr.diff"
        self.diff.write_text(diff_text(FILES))
        for name, value in {
            "DEPTHGATE_GATEWAY_URL": up.url,
            "DEPTHGATE_GATEWAY_KEY": KEY,
            "GITHUB_API_URL": gh.url,
            "GITHUB_TOKEN": "ghs_test_write",
            "DEPTHGATE_GITHUB_WRITE_INTERVAL_S": "0",
        }.items():
            monkeypatch.setenv(name, value)
        self.runs = 0

    def __call__(self, surface: str, *extra: str) -> tuple[int, dict[str, Any] | None, str]:
        """Run one surface; returns the exit code, the handoff note (if any) and stdout."""
        self.runs += 1
        handoff = self.tmp / f"run{self.runs}" / "handoff.json"  # a folder that does not exist
        common = ["--config", str(self.config), "--handoff", str(handoff), *extra]
        if surface == "diff":
            code = main(["review", "--dry-run", "--diff", str(self.diff), *common])
        elif surface == "pr":
            self.mp.setenv("DEPTHGATE_BOT_LOGIN", "github-actions[bot]")
            code = main(["review", "--pr", f"{REPO}#{NUMBER}", *common])
        else:
            env = {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_EVENT_PATH": str(PAYLOADS / "opened.payload.json"),
                "GITHUB_OUTPUT": str(self.tmp / f"output{self.runs}"),
                "GITHUB_STEP_SUMMARY": str(self.tmp / f"summary{self.runs}.md"),
                "RUNNER_TEMP": str(self.tmp),
            }
            with pytest.MonkeyPatch.context() as mp:
                for name, value in env.items():
                    mp.setenv(name, value)
                code = main(["review", *common])
        out, _ = self.capsys.readouterr()
        note = json.loads(handoff.read_text()) if handoff.exists() else None
        return code, note, out


@pytest.fixture
def surfaces(
    fake: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Surfaces]:
    with serve_github() as gh:
        gh.add_pull(REPO, NUMBER, head_sha=HEAD, files=FILES)
        yield Surfaces(gh, fake, tmp_path, monkeypatch, capsys)
        assert not gh.errors


# One run per case: a second run on the same head reviews nothing new (the summary's marker).
@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(("fail_on", "code"), [("high", 1), ("critical", 0), (None, 0)], ids=str)
def test_a_high_finding_only_the_summary_can_hold_fails_on_high(
    surfaces: Surfaces, fake: FakeUpstream, surface: str, fail_on: str | None, code: int
) -> None:
    # line 40 of app/auth.py is not in the diff: the finding can only go to the summary
    fake.default = answer(finding("high", 40))
    extra = ("--fail-on", fail_on) if fail_on else ()
    assert surfaces(surface, *extra)[:2] == (code, None)


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(("fail_on", "code"), [("low", 1), ("medium", 1), ("high", 0)])
def test_an_inline_finding_fails_at_or_above_its_severity(
    surfaces: Surfaces, fake: FakeUpstream, surface: str, fail_on: str, code: int
) -> None:
    fake.default = answer()
    fake.script("deep-model", answer(finding("medium", 2)))
    assert surfaces(surface, "--fail-on", fail_on)[:2] == (code, None)
    if surface == "pr":  # placed inline, not in the summary
        assert len(surfaces.gh.reviews(REPO, NUMBER)) == 1
        assert len(surfaces.gh.review_comments(REPO, NUMBER)) == 1


def test_the_handoff_has_one_shape_on_every_surface(surfaces: Surfaces, fake: FakeUpstream) -> None:
    fake.default = error(500, "upstream down")
    notes = {}
    for surface in SURFACES:
        code, note, _ = surfaces(surface, "--fail-on", "info")
        assert code == 3, surface
        assert note is not None, f"{surface}: no handoff file (its folder did not exist)"
        notes[surface] = note
    shapes = {s: (sorted(n), sorted(n["gateway"]), sorted(n["hunks"])) for s, n in notes.items()}
    assert shapes["diff"] == shapes["pr"] == shapes["action"]
    for note in notes.values():
        assert note["gateway"]["error_class"] == "server"
        assert note["hunks"]["total"] == 3
        assert note["hunks"]["reviewed"] == 0
        assert {f["path"] for f in note["hunks"]["failed"]} == {f["filename"] for f in FILES}
    assert notes["diff"]["pr"] is None
    assert notes["pr"]["pr"] == notes["action"]["pr"] == f"{REPO}#{NUMBER}"
    assert notes["pr"]["github_host"] == notes["action"]["github_host"] == surfaces.gh.url


def test_the_same_findings_give_the_same_comments_on_every_surface(
    surfaces: Surfaces, fake: FakeUpstream
) -> None:
    fake.default = Behavior(echo_finding=True)
    code, _, out = surfaces("diff", "--format", "json")
    assert code == 0
    local = {(c["path"], c["line"], c["fingerprint"]) for c in json.loads(out)["comments"]}
    assert surfaces("pr")[0] == 0
    posted = surfaces.gh.review_comments(REPO, NUMBER)
    assert {(c["path"], c["line"]) for c in posted} == {(p, line) for p, line, _ in local}
    assert all(any(fp in c["body"] for _, _, fp in local) for c in posted)


PROGRESS = re.compile(
    r"^depthgate: (?P<task>\S+) -> (?P<alias>review-(?:fast|deep)) \((?P<tier>fast|logic|deep), "
    r"(?P<hunks>\d+) hunks?\): (?P<status>sent|reviewed in \d+\.\d s, \d+ findings?)$"
)


def _progress(text: str) -> list[re.Match[str]]:
    return [m for line in text.splitlines() if (m := PROGRESS.match(line))]


def test_progress_is_printed_while_the_review_runs(
    surfaces: Surfaces, fake: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.default = Behavior(echo_finding=True)
    # a terminal: on stderr, stdout keeps the one JSON document
    args = ["--diff", str(surfaces.diff), "--config", str(surfaces.config), "--format", "json"]
    code = main(["review", "--dry-run", *args])
    out, err = capsys.readouterr()
    assert code == 0
    json.loads(out)
    lines = _progress(err)
    assert [m["status"] for m in lines].count("sent") == 3
    done = [m for m in lines if m["status"] != "sent"]
    assert len(done) == 3
    assert {m["alias"] for m in done} == {"review-fast", "review-deep"}
    assert {m["task"] for m in done} == {m["task"] for m in lines if m["status"] == "sent"}


def test_progress_in_actions_is_one_log_group(surfaces: Surfaces, fake: FakeUpstream) -> None:
    fake.default = Behavior(echo_finding=True)
    code, _, out = surfaces("action")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("::group::depthgate: review progress")
    end = lines.index("::endgroup::", start)
    inside = "\n".join(lines[start + 1 : end])
    assert len(_progress(inside)) == 6
    assert _progress("\n".join(lines[:start] + lines[end:])) == []


def test_exit_codes_in_their_order_of_precedence() -> None:
    """GitHub's failure outranks the gateway's, which outranks findings (design §3); a fork
    PR's read-only token is expected, not a failure."""
    from depthgate.cli.run import exit_code  # noqa: PLC0415
    from depthgate.core.ports import GitHubErrorClass, GitHubFailure  # noqa: PLC0415

    refused = GitHubFailure("no", step="post the review", error_class=GitHubErrorClass.FORBIDDEN)
    assert exit_code(None, fail_on=None) == 0
    assert exit_code(None, fail_on="info", github_failure=refused) == 4
    assert exit_code(None, fail_on="info", github_failure=refused, fork_read_only=True) == 0
