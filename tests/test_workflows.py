"""The composite action, the workflows and the action's hash-locked requirements, linted offline.

Two external linters run as subprocesses from this venv (the test extra pins them):
check-jsonschema against its vendored GitHub schemas, and zizmor's static security audits with
``--offline``. Their environment points every proxy variable at a closed local port, so a tool that
tried to reach the network would fail here, loudly, instead of passing or hanging. Each also gets a
known-bad input, to show that it really checks something in this environment.

The rest are structural checks in Python: pinned ``uses:``, no expression expanded inside a ``run:``
script, every input passed through ``env:``, outputs mapped from the ``run`` step, least privilege
in the workflows, the lock file covering pyproject's dependencies with hashes, and the ``run``
step's bash executed against a stand-in ``depthgate``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from depthgate.github.actions import action_outputs

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
LOCK = ROOT / "requirements" / "action.txt"
PYPROJECT = ROOT / "pyproject.toml"
BIN = Path(sys.executable).parent

# The names the CLI writes to $GITHUB_OUTPUT itself: action.yml must declare exactly these.
EXPECTED_OUTPUTS = set(action_outputs())

SHA_PIN = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+#\s*(v\d+(?:\.\d+){0,2})\s*")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$")
NETWORK_HINT = re.compile(
    r"(?i)connect|proxy|network|dns|resolv|timed? ?out|unreachable|tls|certificate"
)


def _pinning_problems(text: str) -> list[str]:
    """Lines of a workflow or action whose ``uses:`` is not ``owner/repo@<sha> # vX.Y.Z``."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = USES_LINE.match(line)
        if m is None:
            continue
        ref = m["ref"].strip("'\"")
        if ref.startswith("./"):  # this repository's own action, at the checked-out commit
            continue
        if not SHA_PIN.fullmatch(ref) or not VERSION_COMMENT.fullmatch(m["rest"]):
            problems.append(f"line {number}: {line.strip()}")
    return problems


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


def _steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step of an action (runs.steps) or of a workflow's jobs."""
    if "runs" in doc:
        yield from doc["runs"].get("steps", [])
        return
    for job in doc.get("jobs", {}).values():
        yield from job.get("steps", [])


def _uses_values(doc: dict[str, Any]) -> list[str]:
    found = [str(step["uses"]) for step in _steps(doc) if "uses" in step]
    found += [str(job["uses"]) for job in doc.get("jobs", {}).values() if "uses" in job]
    return found


def _action_steps() -> list[dict[str, Any]]:
    steps = _load(ACTION)["runs"]["steps"]
    assert isinstance(steps, list)
    return steps


def _step(step_id: str) -> dict[str, Any]:
    matches = [s for s in _action_steps() if s.get("id") == step_id]
    assert len(matches) == 1, f"action.yml: expected one step with id {step_id!r}"
    return matches[0]


def _on(workflow: dict[Any, Any]) -> Any:
    # YAML 1.1: PyYAML reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


# --- external linters ----------------------------------------------------------------------------


def _offline_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN", "ZIZMOR_CONFIG"}
    }
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = closed
    env["NO_PROXY"] = env["no_proxy"] = ""
    env["NO_COLOR"] = "1"
    return env


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(
            f"{name} is not installed in {BIN}; it is part of the test extra: "
            "pip install -e '.[test]'"
        )
    return path


def _run_tool(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(a) for a in argv],
            cwd=cwd,
            env=_offline_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{Path(argv[0]).name} did not finish in 120 s (waiting on the network?)")


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    output = f"{proc.stdout}\n{proc.stderr}"
    hint = ""
    if NETWORK_HINT.search(output):
        hint = (
            "\nThe output looks like a network failure: this test runs the tool with every proxy "
            "pointed at a closed port, and the tool must work offline."
        )
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}{hint}"


def test_the_files_under_test_exist() -> None:
    assert ACTION.is_file()
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "review.yml", "smoke.yml"} <= names
    assert not list(WORKFLOW_DIR.glob("*.yaml")), "use .yml for workflows (one glob covers them)"
    assert LOCK.is_file()


def test_action_yml_matches_the_github_actions_schema() -> None:
    proc = _run_tool(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", ACTION)
    assert proc.returncode == 0, _explain(proc)
    assert "ok -- validation done" in proc.stdout


def test_workflows_match_the_github_workflows_schema() -> None:
    proc = _run_tool(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *WORKFLOWS
    )
    assert proc.returncode == 0, _explain(proc)
    assert "ok -- validation done" in proc.stdout


def test_check_jsonschema_rejects_an_action_without_runs(tmp_path: Path) -> None:
    bad = tmp_path / "action.yml"
    bad.write_text("name: x\ndescription: y\n", encoding="utf-8")
    proc = _run_tool(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", bad)
    assert proc.returncode == 1, _explain(proc)
    assert "runs" in proc.stdout + proc.stderr


def _zizmor(*inputs: str | Path, cwd: Path = ROOT) -> tuple[list[Any], str]:
    proc = _run_tool(
        _tool("zizmor"),
        "--offline",  # no online audits, no GitHub API, no remote inputs
        "--strict-collection",  # an input that does not parse fails instead of being skipped
        "--no-progress",
        "--format",
        "json",
        *inputs,
        cwd=cwd,
    )
    # zizmor's exit codes: 0 no findings, 10-14 findings by highest severity, others: failure.
    assert proc.returncode in {0, 10, 11, 12, 13, 14}, _explain(proc)
    try:
        findings = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"zizmor printed no JSON\n{_explain(proc)}")
    assert isinstance(findings, list)
    assert (proc.returncode == 0) == (not findings), _explain(proc)
    return findings, proc.stderr


def _describe(finding: dict[str, Any]) -> str:
    loc = (finding.get("locations") or [{}])[0]
    point = loc.get("concrete", {}).get("location", {}).get("start_point", {})
    key = json.dumps(loc.get("symbolic", {}).get("key"))
    return f"{finding.get('ident')}: {finding.get('desc')} at {key}, row {point.get('row')}"


def test_zizmor_finds_nothing_in_the_action_and_workflows() -> None:
    assert ZIZMOR_CONFIG.is_file()
    findings, log = _zizmor(
        "--config", ZIZMOR_CONFIG.relative_to(ROOT), "action.yml", ".github/workflows/"
    )
    assert not findings, "\n".join(_describe(f) for f in findings)
    # and it did audit every file, not an empty collection
    for path in [ACTION, *WORKFLOWS]:
        assert f"completed {path.relative_to(ROOT)}" in log, log


def test_zizmor_flags_a_known_bad_workflow(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: push\n"
        "permissions: {}\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        '      - run: echo "${{ github.event.head_commit.message }}"\n',
        encoding="utf-8",
    )
    findings, _ = _zizmor("--no-config", ".github/workflows/bad.yml", cwd=tmp_path)
    assert {"template-injection", "unpinned-uses", "artipacked"} <= {f["ident"] for f in findings}


# --- structural checks ---------------------------------------------------------------------------

ALL_FILES = [ACTION, *WORKFLOWS]
IDS = [p.name for p in ALL_FILES]


@pytest.mark.parametrize("path", ALL_FILES, ids=IDS)
def test_every_uses_is_pinned_to_a_commit_with_a_version_comment(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _pinning_problems(text) == []
    # every `uses:` the YAML holds was seen on a line of its own (no flow-style mapping hides one)
    seen = sum(1 for line in text.splitlines() if USES_LINE.match(line))
    assert seen == len(_uses_values(_load(path)))


def test_the_pin_check_catches_tags_branches_and_missing_comments() -> None:
    text = (
        "steps:\n"
        "  - uses: actions/checkout@v4\n"
        "  - uses: actions/checkout@main # v4.2.2\n"
        "  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683\n"
        "  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # latest\n"
        "  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
        "  - uses: ./\n"
    )
    assert [p.split(":")[0] for p in _pinning_problems(text)] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
    ]


def test_an_action_is_pinned_to_one_commit_and_version_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in ALL_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            m = USES_LINE.match(line)
            if m and "@" in m["ref"]:
                name, _, sha = m["ref"].partition("@")
                pins.setdefault(name, set()).add(f"{sha}{m['rest']}".strip())
    assert pins, "no pinned actions found"
    assert {name: refs for name, refs in pins.items() if len(refs) > 1} == {}


@pytest.mark.parametrize("path", ALL_FILES, ids=IDS)
def test_no_expression_is_expanded_inside_a_run_script(path: Path) -> None:
    scripts = [str(step["run"]) for step in _steps(_load(path)) if "run" in step]
    assert [s for s in scripts if "${{" in s] == []


def test_every_action_input_reaches_the_scripts_through_env_only() -> None:
    action = _load(ACTION)
    inputs = set(action["inputs"])
    assert inputs
    referenced: set[str] = set()
    for step in action["runs"]["steps"]:
        for value in (step.get("env") or {}).values():
            referenced |= set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", str(value)))
        # `with:` of an action step may use an input, but no input feeds a step's command line
        assert "inputs." not in str(step.get("run", "")), step.get("id")
    assert inputs - referenced == set(), "inputs never passed to a step's env"
    assert referenced - inputs == set(), "env refers to undeclared inputs"


def test_every_output_is_mapped_from_the_run_step() -> None:
    outputs = _load(ACTION)["outputs"]
    assert set(outputs) == EXPECTED_OUTPUTS
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}", name
        assert spec.get("description")
    _step("run")


def test_every_workflow_is_least_privilege_and_bounded() -> None:
    for path in WORKFLOWS:
        wf = _load(path)
        assert "permissions" in wf, f"{path.name}: no top-level permissions"
        for job_id, job in wf["jobs"].items():
            where = f"{path.name}:{job_id}"
            assert isinstance(job.get("timeout-minutes"), int), f"{where}: no timeout-minutes"
            perms = job.get("permissions", wf["permissions"])
            assert perms != "write-all", where
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, where


# --- the run step's script, executed --------------------------------------------------------------

FAKE_DEPTHGATE = """#!/usr/bin/env bash
{
  printf 'argv:%s\\n' "$*"
  for name in DEPTHGATE_CONFIG DEPTHGATE_FAIL_ON DEPTHGATE_MAX_COMMENTS DEPTHGATE_DRY_RUN \\
      DEPTHGATE_GATEWAY_URL DEPTHGATE_GATEWAY_KEY GITHUB_TOKEN; do
    if [ -n "${!name+set}" ]; then printf '%s=%s\\n' "$name" "${!name}"; fi
  done
} > "$FAKE_LOG"
"""


def _run_step(tmp_path: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the `run` step's script as the runner would: bash, with the step's env resolved."""
    step = _step("run")
    assert step["shell"] == "bash"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "depthgate"
    fake.write_text(FAKE_DEPTHGATE, encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    defaults = {k: str(v.get("default", "")) for k, v in _load(ACTION)["inputs"].items()}
    values = {**defaults, "github-token": "ghs_token", **inputs}
    env = {
        "PATH": os.environ["PATH"],
        "RUNNER_TEMP": str(tmp_path),
        "FAKE_LOG": str(tmp_path / "log"),
    }
    for name, expr in step["env"].items():
        m = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", str(expr))
        env[name] = values[m[1]] if m else str(bindir)  # steps.install.outputs.bin
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", str(step["run"])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    log = tmp_path / "log"
    return proc, log.read_text(encoding="utf-8") if log.exists() else ""


def test_run_step_review_passes_only_the_inputs_that_were_set(tmp_path: Path) -> None:
    proc, log = _run_step(tmp_path, **{"gateway-url": "https://gw", "gateway-key": "k"})
    assert proc.returncode == 0, proc.stderr
    assert log.splitlines() == [
        f"argv:review --handoff {tmp_path}/depthgate-handoff.json",
        "DEPTHGATE_GATEWAY_URL=https://gw",
        "DEPTHGATE_GATEWAY_KEY=k",
        "GITHUB_TOKEN=ghs_token",
    ]


def test_run_step_passes_set_inputs_verbatim(tmp_path: Path) -> None:
    proc, log = _run_step(
        tmp_path,
        config="ci/routes file.yaml",
        **{"fail-on": "high", "max-comments": "30", "dry-run": "true"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "DEPTHGATE_CONFIG=ci/routes file.yaml" in log.splitlines()
    assert {"DEPTHGATE_FAIL_ON=high", "DEPTHGATE_MAX_COMMENTS=30", "DEPTHGATE_DRY_RUN=true"} <= set(
        log.splitlines()
    )


def test_run_step_smoke(tmp_path: Path) -> None:
    proc, log = _run_step(tmp_path, mode="smoke")
    assert proc.returncode == 0, proc.stderr
    assert log.splitlines()[0] == f"argv:smoke --out {tmp_path}/depthgate-smoke.json"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"mode": "plan"}, "input mode must be 'review' or 'smoke'"),
        ({"mode": "review; touch pwned"}, "input mode must be 'review' or 'smoke'"),
        ({"mode": "$(touch pwned)"}, "input mode must be 'review' or 'smoke'"),
        ({"dry-run": "yes"}, "input dry-run must be 'true' or 'false'"),
    ],
)
def test_run_step_rejects_unknown_values(
    tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    proc, log = _run_step(tmp_path, **inputs)
    assert proc.returncode == 2
    assert proc.stdout.startswith("::error ")
    assert message in proc.stdout
    assert log == "", "depthgate must not run"
    assert not (tmp_path / "pwned").exists()
