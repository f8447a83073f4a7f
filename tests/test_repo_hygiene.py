"""Supply-chain rules for what this repository itself runs (threats.md T7, T10)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def workflow_files() -> list[Path]:
    files = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    files += [p for p in (ROOT / "action.yml", ROOT / "action.yaml") if p.exists()]
    return files


def uses_of(node: object) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(uses_of(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(uses_of(item))
    return found


def test_every_uses_is_pinned_to_a_full_sha() -> None:
    files = workflow_files()
    assert files
    for path in files:
        for ref in uses_of(yaml.safe_load(path.read_text())):
            if ref.startswith("./"):
                continue
            assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a 40-hex commit SHA"


def run_scripts(node: object, where: str) -> list[tuple[str, str]]:
    """Every ``run:`` script in a workflow or action, with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                found.append((where, value))
            else:
                found.extend(run_scripts(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(run_scripts(item, f"{where}[{i}]"))
    return found


def test_no_expressions_inside_run_scripts() -> None:
    """`${{ }}` in a run: script is template injection; values go through env: instead."""
    scripts = []
    for path in workflow_files():
        scripts += run_scripts(yaml.safe_load(path.read_text()), path.name)
    assert scripts  # the check saw something
    for where, script in scripts:
        assert "${{" not in script, f"{where}: expression inside run:"


def test_workflows_declare_permissions() -> None:
    for path in sorted((ROOT / ".github" / "workflows").glob("*.y*ml")):
        assert "permissions" in yaml.safe_load(path.read_text()), path.name
