"""Real git repositories in a tmp dir, for the source-port tests: commits, diffs, blob ids."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitRepo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "test@example.com")
        self.git("config", "user.name", "test")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.root), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return proc.stdout

    def write(self, files: dict[str, str]) -> None:
        for path, text in files.items():
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def diff(self, base: str, head: str | None = None) -> str:
        return self.git("diff", base, *([head] if head else []))

    def patch_of(self, base: str, head: str, path: str) -> str:
        """The hunks of one file, as GitHub's files API gives them (no file headers)."""
        text = self.git("diff", base, head, "--", path)
        return text[text.index("@@") :].rstrip("\n")
