"""The routing evaluation (bench/routing_eval.py) in its offline form: hand-written fixture diffs
in the style of real security fixes and of ordinary changes, scored by the harness's own code
with the packaged config. No download: the real corpus is built by the harness at run time."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from bench.routing_eval import (
    DEFAULT_CASES,
    EvalCase,
    _git_diff,
    _selected,
    evaluate,
    read_sdist,
    render,
)
from depthgate.core.diff import parse_diff
from depthgate.core.routes import LoadedConfig

FIXTURES = Path(__file__).parent / "data" / "routing"


def fixture_cases() -> list[EvalCase]:
    spec = yaml.safe_load((FIXTURES / "cases.yaml").read_text(encoding="utf-8"))
    cases = [
        EvalCase(
            c["diff"], "fix", (FIXTURES / c["diff"]).read_text(encoding="utf-8"), tuple(c["fix"])
        )
        for c in spec["fixes"]
    ]
    cases += [
        EvalCase(c["diff"], "ordinary", (FIXTURES / c["diff"]).read_text(encoding="utf-8"))
        for c in spec["ordinary"]
    ]
    return cases


def test_fixture_fixes_go_deep_and_ordinary_changes_do_not(default_config: LoadedConfig) -> None:
    report = evaluate(fixture_cases(), default_config)
    assert report.recall() == 1.0, render(report, verbose=True)
    assert report.over_escalation() == 0.0, render(report, verbose=True)
    assert report.cases_caught() == (6, 6)
    # the deep tier costs less than "everything deep"
    assert 0 < report.deep_tier_token_share() < 1
    text = render(report)
    assert "recall (fix hunks routed deep by the plan): 100.0%" in text
    assert "over-escalation (ordinary hunks routed deep): 0.0%" in text
    assert "deep-alias tokens vs everything deep:" in text


def test_every_deep_fix_hunk_names_its_signal(default_config: LoadedConfig) -> None:
    report = evaluate(fixture_cases(), default_config)
    for case in report.cases:
        for hunk in case.fix_hunks:
            assert hunk.tier == "deep"
            assert hunk.reasons, hunk
            assert all(r.startswith("deep.") for r in hunk.reasons)
    signals = {r for c in report.cases for h in c.fix_hunks for r in h.reasons}
    # the fixtures are caught by the security-domain signals, not only by paths and patterns
    assert sum(r.startswith("deep.security.") for r in signals) >= 4, signals


def test_a_fix_pattern_that_matches_no_hunk_is_an_error(default_config: LoadedConfig) -> None:
    case = fixture_cases()[0]
    broken = EvalCase(case.name, "fix", case.diff, ("no such line anywhere",))
    with pytest.raises(ValueError, match="no hunk matches"):
        evaluate([broken], default_config)


def test_the_corpus_list_is_well_formed() -> None:
    data = yaml.safe_load(DEFAULT_CASES.read_text(encoding="utf-8"))
    fixes, ordinary = data["fixes"], data["ordinary"]
    assert len(fixes) >= 15
    assert len({f["package"] for f in fixes}) >= 8
    assert len(ordinary) >= len(fixes)  # issue #6: as many ordinary releases' diffs as fixes
    assert {o["package"] for o in ordinary} <= {f["package"] for f in fixes}
    for f in fixes:
        assert re.fullmatch(
            r"(CVE-\d{4}-\d{4,}|GHSA(-[2-9cfghjmpqrvwx]{4}){3}|PYSEC-\d{4}-\d+)", f["advisory"]
        )
        assert f["split"] in ("tune", "held_out")
        assert f["files"]
        assert f["fix"]
        assert f["kind"]
        for pattern in f["fix"]:
            re.compile(pattern)
    # only the list is committed: no third-party source or diff next to it
    bench = DEFAULT_CASES.parent
    assert not list(bench.glob("*.diff"))
    assert not list(bench.glob("*.tar.gz"))


def test_ordinary_file_selection() -> None:
    globs = ["src/pkg/**/*.py", "!src/pkg/vendor/**"]
    assert _selected("src/pkg/http/client.py", globs)
    assert not _selected("src/pkg/vendor/six.py", globs)
    assert not _selected("src/pkg/tests/test_client.py", globs)  # tests are left out
    assert not _selected("docs/index.py", globs)


def _sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"pkg-1.0/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.skipif(shutil.which("git") is None, reason="git renders the diffs")
def test_sdists_are_read_and_diffed_like_a_pr(tmp_path: Path) -> None:
    old = read_sdist(_sdist(tmp_path / "a.tar.gz", {"pkg/m.py": "a = 1\nb = 2\n"}))
    new = read_sdist(_sdist(tmp_path / "b.tar.gz", {"pkg/m.py": "a = 1\nb = 3\n"}))
    assert old == {"pkg/m.py": b"a = 1\nb = 2\n"}
    diff = parse_diff(_git_diff(old["pkg/m.py"], new["pkg/m.py"], "pkg/m.py"))
    (f,) = diff.files
    assert f.path == "pkg/m.py"
    assert [ln.text for ln in f.hunks[0].lines][-2:] == ["b = 2", "b = 3"]
    added = parse_diff(_git_diff(None, new["pkg/m.py"], "pkg/new.py"))
    assert added.files[0].path == "pkg/new.py"
