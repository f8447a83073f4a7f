"""`depthgate instructions --write / --check` keeps the Model routing block in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from depthgate.cli.instructions import END, START, apply_block, render_block
from depthgate.cli.main import main
from depthgate.core.routes import LoadedConfig

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "src" / "depthgate" / "data" / "gateway-routes.yaml")


def test_the_block_names_aliases_and_never_a_model(default_config: LoadedConfig) -> None:
    block = render_block(default_config.config)
    assert block.startswith(START)
    assert block.endswith(END)
    assert "`review-fast`" in block
    assert "`review-deep`" in block
    for route in default_config.config.routes.values():
        assert route.locked_model is not None
        assert route.locked_model.rstrip("*") not in block


def test_apply_keeps_the_owners_text() -> None:
    block = f"{START}\nnew\n{END}"
    text = f"# Agents\n\nOwn words.\n\n{START}\nold\n{END}\n\nMore own words.\n"
    assert apply_block(text, block) == f"# Agents\n\nOwn words.\n\n{block}\n\nMore own words.\n"
    assert apply_block("# Title", block) == f"# Title\n\n{block}\n"
    assert apply_block("", block) == f"{block}\n"


def test_write_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "AGENTS.md").write_text("# Agents\n\nKeep this.\n")
    assert main(["instructions", "--check", "--root", str(tmp_path), "--config", CONFIG]) == 1
    assert "AGENTS.md: missing_block" in capsys.readouterr().out
    assert main(["instructions", "--write", "--root", str(tmp_path), "--config", CONFIG]) == 0
    assert (tmp_path / ".github" / "copilot-instructions.md").is_file()
    assert (tmp_path / "AGENTS.md").read_text().startswith("# Agents\n\nKeep this.\n\n")
    capsys.readouterr()
    assert main(["instructions", "--check", "--root", str(tmp_path), "--config", CONFIG]) == 0
    assert capsys.readouterr().out.count(": current") == 3
    # a routing change makes the blocks stale
    changed = tmp_path / "routes.yaml"
    original = Path(CONFIG).read_text()
    changed.write_text(original)
    assert main(["instructions", "--write", "--root", str(tmp_path), "--config", str(changed)]) == 0
    capsys.readouterr()
    rerouted = original.replace("  logic: review-fast", "  logic: review-deep")
    assert rerouted != original
    changed.write_text(rerouted)
    assert main(["instructions", "--check", "--root", str(tmp_path), "--config", str(changed)]) == 1
    assert "CLAUDE.md: stale" in capsys.readouterr().out
