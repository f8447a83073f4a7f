"""``depthgate instructions``: the "Model routing" block of agent instruction files, kept in sync
with ``gateway-routes.yaml``.

Coding agents read ``AGENTS.md``, ``CLAUDE.md`` and ``.github/copilot-instructions.md``. The
block depthgate keeps there says which gateway alias each kind of review uses, and that model
identifiers live only in ``gateway-routes.yaml``: it names aliases, never a model id, so it does
not go stale when a model changes -- only when the routing does. The block sits between two
markers; text around it is the file owner's and is never touched. Rendering is pure; reading
and writing the files is in :func:`sync`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from depthgate.core.guidance import ROUTING_END, ROUTING_START
from depthgate.core.routes import RoutesConfig, Tier

FILES = ("AGENTS.md", "CLAUDE.md", ".github/copilot-instructions.md")
START, END = ROUTING_START, ROUTING_END  # one owner: the guidance reader leaves the block out
_TIER_TEXT = {
    Tier.FAST: "fast review: syntax, style, docs, small changes in one file",
    Tier.LOGIC: "logic review: control flow, function and module scope",
    Tier.DEEP: "deep review: security, architecture, cross-file changes",
}


def render_block(config: RoutesConfig, config_path: str = "gateway-routes.yaml") -> str:
    rows = [
        f"| {_TIER_TEXT[t]} | `{config.tiers.alias(t)}` |"
        for t in (Tier.FAST, Tier.LOGIC, Tier.DEEP)
    ]
    lines = [
        START,
        "## Model routing",
        "",
        "Reviews go through the LLM gateway by route alias, one alias per depth of review:",
        "",
        "| task | gateway alias |",
        "|---|---|",
        *rows,
        "",
        f"Model identifiers live only in `{config_path}` (`routes.<alias>.locked_model`). Never "
        "write a model id into prompts, code or these instructions: refer to the alias.",
        END,
    ]
    return "\n".join(lines)


def apply_block(text: str, block: str) -> str:
    """``text`` with its routing block replaced by ``block``, or the block appended."""
    start = text.find(START)
    end = text.find(END, start + 1) if start != -1 else -1
    if start != -1 and end != -1:
        return text[:start] + block + text[end + len(END) :]
    if not text:
        return block + "\n"
    return text + ("\n" if text.endswith("\n") else "\n\n") + block + "\n"


@dataclass(frozen=True)
class FileState:
    path: str
    state: str  # current | stale | missing_block | missing_file | written


def sync(root: Path, block: str, *, write: bool, files: Iterable[str] = FILES) -> list[FileState]:
    out = []
    for name in files:
        path = root / name
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        if text is not None and block in text:
            out.append(FileState(name, "current"))
            continue
        if not write:
            if text is None:
                state = "missing_file"
            else:
                state = "stale" if START in text else "missing_block"
            out.append(FileState(name, state))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(apply_block(text or "", block), encoding="utf-8")
        out.append(FileState(name, "written"))
    return out
