"""The command line: exit codes, one JSON document on stdout, one-line errors on stderr."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from depthgate.cli.main import main
from depthgate.core.diff import Side, parse_diff

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pr.diff"
CASES = sorted((ROOT / "tests" / "data" / "diffs").glob("*.diff"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_text_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--diff", str(EXAMPLE), "-v")
    assert code == 0, err
    assert "deep.pattern.shell_exec" in out
    assert "deep.path.ci_workflow" in out
    assert "[lockfile]" in out
    assert "[binary]" in out


def test_plan_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--diff", str(EXAMPLE), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"files", "tasks", "skipped", "totals"}
    task = doc["tasks"][0]
    assert set(task) >= {"id", "alias", "tier", "hunks", "est_input_tokens"}
    assert set(task["hunks"][0]) >= {
        "path",
        "old_start",
        "old_lines",
        "new_start",
        "new_lines",
        "reasons",
    }
    assert all({"path", "reason"} <= set(s) for s in doc["skipped"])
    tiers = {h["path"]: h["tier"] for f in doc["files"] for h in f["hunks"]}
    assert tiers["src/shop/export.py"] == "deep"
    assert tiers[".github/workflows/ci.yml"] == "deep"
    assert tiers["src/shop/auth/session.py"] == "deep"
    assert tiers["docs/usage.md"] == "fast"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_plan_json_on_every_diff_case(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--diff", str(case), "--format", "json")
    if code == 2:
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith("depthgate: error: ")
        return
    assert code == 0, err
    doc = json.loads(out)
    diff = parse_diff(case.read_bytes())
    got = [h["anchors"] for f in doc["files"] for h in f["hunks"]]
    want = [
        {
            "RIGHT": [a.line for a in h.anchors() if a.side is Side.RIGHT],
            "LEFT": [a.line for a in h.anchors() if a.side is Side.LEFT],
        }
        for h in diff.hunks
    ]
    assert got == want
    # every hunk is planned, or skipped with a reason
    for f in doc["files"]:
        for h in f["hunks"]:
            assert bool(h["tasks"]) != bool(h["skip"]), (f["path"], h)


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(EXAMPLE.read_bytes()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    code, out, _ = run(capsys, "plan", "--diff", "-", "--format", "json")
    assert code == 0
    assert json.loads(out)["totals"]["files"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--diff", "/nonexistent/x.diff"], "/nonexistent/x.diff: no such file"),
        (["plan", "--diff", "/"], "/: is a directory"),
        (["plan", "--diff", str(ROOT / "pyproject.toml")], "not a unified diff"),
        (["plan", "--diff", str(EXAMPLE), "--config", "/nonexistent.yaml"], "no such file"),
        (["routes", "check", "--config", str(EXAMPLE)], "not valid YAML"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert message in err


def test_routes_check_and_schema(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml")
    code, out, _ = run(capsys, "routes", "check", "--config", config)
    assert code == 0
    assert "valid" in out
    code, out, _ = run(capsys, "routes", "check", "--config", config, "--format", "json")
    assert json.loads(out)["routes"] == ["review-deep", "review-fast"]
    code, out, _ = run(capsys, "routes", "schema")
    assert json.loads(out)["title"] == "gateway-routes.yaml"


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it, on input that is not a diff."""
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"\x00\xff not a diff \xfe\n")
    exe = Path(sys.executable).with_name("depthgate")
    res = subprocess.run(
        [str(exe), "plan", "--diff", str(bad), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stdout == ""
    ok = subprocess.run(
        [str(exe), "plan", "--diff", str(EXAMPLE)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr


def test_plan_text_names_what_a_task_reviews_and_its_context_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "plan", "--diff", str(EXAMPLE), "-v", "--format", "json")
    tasks = json.loads(out)["tasks"]
    code, out, _ = run(capsys, "plan", "--diff", str(EXAMPLE), "-v")
    assert code == 0
    lines = out.splitlines()
    for task in tasks:
        i = next(n for n, ln in enumerate(lines) if ln.startswith(f"  {task['id']} -> "))
        n = len(task["hunks"])
        reviews = lines[i + 1]
        assert reviews.startswith(f"      reviews {n} hunk{'s' if n > 1 else ''}: "), reviews
        for h in task["hunks"]:
            assert h["path"] in reviews
        after = lines[i + 2] if i + 2 < len(lines) else ""
        if after.startswith("      context: "):
            # the context lists other hunks' files, not the task's own hunks again
            assert "@@" not in after
    assert "context: 2 other hunks (docs/usage.md, src/shop/pricing.py)" in out
    assert "context 1 hunks" not in out
    assert "1 hunks" not in out
    assert "1 files" not in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_empty_diff_is_a_notice_not_a_silent_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    empty = tmp_path / "empty.diff"
    empty.write_text("")
    code, out, err = run(capsys, "plan", "--diff", str(empty), "--format", fmt)
    assert code == 0
    where = out if fmt == "text" else err
    assert "the diff is empty -- there is nothing to review" in where
    assert "git diff origin/main...HEAD" in where
    if fmt == "json":
        assert json.loads(out)["totals"]["files"] == 0
