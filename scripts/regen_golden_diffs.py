"""Regenerate the golden diff cases under tests/data/diffs from real ``git diff`` runs.

    .venv/bin/python scripts/regen_golden_diffs.py

Each case builds a throw-away repository, commits the "before" tree, writes the "after" tree and
runs ``git diff`` the way GitHub renders a PR (rename detection on, binary files summarised, paths
quoted). The diff is saved as ``<case>.diff`` and the parse as ``<case>.json``. Before anything is
written, every anchor of every parsed hunk is checked against the real files: a RIGHT anchor must
name the line with that text in the "after" file, a LEFT anchor the line in the "before" file.

Cases git cannot produce (malformed or truncated hunks, NUL bytes, a CRLF-saved diff, text that is
not a diff) are made by editing a real diff, and say so in their name. Review the JSON diff in git
before committing a regeneration: the golden files are the parser's contract.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from depthgate.core.diff import LineKind, parse_diff
from depthgate.core.diff import diff_to_dict as to_dict
from depthgate.core.errors import DiffError

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "diffs"
Tree = dict[
    str, bytes | str | tuple[str, str]
]  # path -> content | ("symlink", target) | ("gitlink", sha)

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "golden",
    "GIT_AUTHOR_EMAIL": "golden@example.invalid",
    "GIT_COMMITTER_NAME": "golden",
    "GIT_COMMITTER_EMAIL": "golden@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-c", "core.quotePath=true", "-c", "core.autocrlf=false", *args],
        cwd=repo,
        env=GIT_ENV,
        check=True,
        capture_output=True,
    ).stdout


def write_tree(repo: Path, tree: Tree) -> None:
    for entry in list(repo.iterdir()):
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    git(repo, "rm", "-r", "-q", "--cached", "--ignore-unmatch", ".")
    gitlinks = []
    for path, content in tree.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            if content[0] == "symlink":
                os.symlink(content[1], target)
            else:
                gitlinks.append((path, content[1]))
            continue
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        if path.endswith(".sh"):
            target.chmod(0o755)
    git(repo, "add", "-A")
    for path, sha in gitlinks:
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")


def real_diff(
    before: Tree, after: Tree, *extra: str, chmod: tuple[str, int] | None = None
) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        git(repo, "init", "-q", "-b", "main")
        write_tree(repo, before)
        git(repo, "commit", "-q", "--allow-empty", "-m", "before")
        write_tree(repo, after)
        if chmod:
            (repo / chmod[0]).chmod(chmod[1])
            git(repo, "add", "-A")
        return git(repo, "diff", "--cached", "--no-color", "-M", "--no-ext-diff", *extra)


def check_anchors(diff_bytes: bytes, before: Tree, after: Tree) -> None:
    """Every anchor names the line with that text on its side (the parser's core promise)."""
    diff = parse_diff(diff_bytes)
    for f in diff.files:
        for hunk in f.hunks:
            for line in hunk.lines:
                if line.kind is LineKind.DELETED or line.kind is LineKind.CONTEXT:
                    src = before.get(f.old_path or "")
                    _expect(src, line.old_no, line.text, f"{f.path} LEFT/old {line.old_no}")
                if line.kind is not LineKind.DELETED:
                    dst = after.get(f.path)
                    _expect(dst, line.new_no, line.text, f"{f.path} RIGHT {line.new_no}")


def _expect(
    content: bytes | str | tuple[str, str] | None, no: int | None, text: str, where: str
) -> None:
    if content is None or no is None:
        raise SystemExit(f"anchor check: {where}: no such file or line number")
    if isinstance(content, tuple):
        kind, value = content
        lines = [value if kind == "symlink" else f"Subproject commit {value}"]
    else:
        data = content if isinstance(content, str) else content.decode("utf-8", "replace")
        lines = [ln.rstrip("\r") for ln in data.split("\n")]
    if lines[no - 1] != text:
        raise SystemExit(f"anchor check: {where}: expected {lines[no - 1]!r}, parsed {text!r}")


PY_BEFORE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(12))
PY_AFTER = PY_BEFORE.replace(
    "return x + 3\n", "if x:\n        return x * 3\n    return 0\n"
).replace("def f9(x):\n    return x + 9\n", "def f9(x, y=1):\n    return x + 9 + y\n")
LONG = "".join(f"line {i}\n" for i in range(1, 41))


def git_cases() -> dict[str, tuple[Tree, Tree, tuple[str, ...], tuple[str, int] | None]]:
    nfc = unicodedata.normalize("NFC", "café.txt")
    nfd = unicodedata.normalize("NFD", "café.txt")
    return {
        "modified_multi_hunk": ({"app.py": PY_BEFORE}, {"app.py": PY_AFTER}, (), None),
        "added_file": ({}, {"src/new.py": "import os\n\nprint(os.getcwd())\n"}, (), None),
        "deleted_file": ({"old.txt": "a\nb\nc\n"}, {}, (), None),
        "renamed_pure": ({"src/a.py": LONG}, {"lib/b.py": LONG}, (), None),
        "renamed_with_edits": (
            {"src/a.py": LONG},
            {"lib/b.py": LONG.replace("line 20\n", "line twenty\n")},
            (),
            None,
        ),
        "copied": (
            {"src/a.py": LONG},
            {"src/a.py": LONG, "src/a_copy.py": LONG.replace("line 5\n", "line five\n")},
            ("-C", "--find-copies-harder"),
            None,
        ),
        "binary": (
            {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x01\x02"},
            {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x03\x04", "icon.bin": b"\x00\xff\x00"},
            (),
            None,
        ),
        "mode_only": ({"run.txt": "echo hi\n"}, {"run.txt": "echo hi\n"}, (), ("run.txt", 0o755)),
        "mode_and_content": (
            {"tool.txt": "a\n"},
            {"tool.txt": "a\nb\n"},
            (),
            ("tool.txt", 0o755),
        ),
        "submodule_bump": (
            {"vendor/lib": ("gitlink", "1" * 40)},
            {"vendor/lib": ("gitlink", "2" * 40)},
            (),
            None,
        ),
        "symlink_changed": (
            {"current": ("symlink", "releases/v1")},
            {"current": ("symlink", "releases/v2"), "etc": ("symlink", "../../etc/passwd")},
            (),
            None,
        ),
        "empty_file_added": ({}, {"empty.txt": ""}, (), None),
        "empty_file_deleted": ({"gone.txt": ""}, {}, (), None),
        "whitespace_only": (
            {"style.js": "function f(a,b){\n  return a+b;\n}\n"},
            {"style.js": "function f(a,b){\n    return a+b;   \n}\n"},
            (),
            None,
        ),
        "crlf_content": (
            {"win.txt": "one\r\ntwo\r\nthree\r\n"},
            {"win.txt": "one\r\n2\r\nthree\r\n"},
            (),
            None,
        ),
        "mixed_line_endings": (
            {"mixed.txt": "a\nb\r\nc\n"},
            {"mixed.txt": "a\nB\r\nC\n"},
            (),
            None,
        ),
        "no_newline_old": ({"n.txt": "a\nb"}, {"n.txt": "a\nb\n"}, (), None),
        "no_newline_new": ({"n.txt": "a\nb\n"}, {"n.txt": "a\nb"}, (), None),
        "no_newline_both": ({"n.txt": "a\nb"}, {"n.txt": "a\nc"}, (), None),
        "quoted_octal_path": ({}, {"docs/naïve résumé.md": "# hi\n"}, (), None),
        "spaces_in_path": (
            {"my dir/some file.txt": "x\n"},
            {"my dir/some file.txt": "y\n"},
            (),
            None,
        ),
        "tab_in_path": ({}, {"odd\tname.txt": "tab\n"}, (), None),
        "nfc_vs_nfd": ({}, {nfc: "composed\n", nfd: "decomposed\n"}, (), None),
        "long_line_200k": ({"data.txt": "short\n"}, {"data.txt": "x" * 200_000 + "\n"}, (), None),
        "separators_inside_lines": (
            {"sep.py": "a = 1\n\x0c\nb = 2\n"},
            {"sep.py": "a = 1\n\x0c\nb = 3  # x\u2028y\rz\x1c\n"},
            (),
            None,
        ),
        "invalid_utf8": ({"latin1.txt": b"caf\xe9\n"}, {"latin1.txt": b"caf\xe9s\n"}, (), None),
        "bidi_zero_width": (
            {"check.py": "ok = True\n"},
            {"check.py": 'ok = user != "admin\u202e \u2066// check\u2069"\nx\u200b = 1\n'},
            (),
            None,
        ),
    }


def _mutate(name: str, source: bytes, edit: Callable[[bytes], bytes]) -> tuple[str, bytes]:
    return name, edit(source)


def crafted_cases(base: bytes) -> list[tuple[str, bytes]]:
    """Inputs no git produces, made by editing the real diff of modified_multi_hunk."""
    first_hunk = base.index(b"@@ -")
    return [
        _mutate(
            "crafted_malformed_hunk_header", base, lambda b: b.replace(b"@@ -8,7 ", b"@@ -8,x ", 1)
        ),
        _mutate(
            "crafted_hunk_counts_wrong",
            base,
            lambda b: b.replace(b"@@ -8,7 +8,9 ", b"@@ -8,17 +8,19 ", 1),
        ),
        _mutate("crafted_truncated", base, lambda b: b[: first_hunk + 60]),
        _mutate(
            "crafted_nul_bytes", base, lambda b: b.replace(b"+    if x:", b"+    if \x00x:", 1)
        ),
        _mutate("crafted_crlf_whole_diff", base, lambda b: b.replace(b"\n", b"\r\n")),
        _mutate("crafted_not_a_diff", base, lambda b: b"hello\nthis is a plain text file\n"),
        _mutate("crafted_empty", base, lambda b: b""),
        _mutate("crafted_bare_hunks", base, lambda b: b[first_hunk:]),
    ]


def plain_unified() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp, "old.c"), Path(tmp, "new.c")
        old.write_text("int main(void) {\n  return 0;\n}\n")
        new.write_text("int main(void) {\n  return 1;\n}\n")
        res = subprocess.run(
            ["diff", "-u", "--label", "a/main.c", "--label", "b/main.c", str(old), str(new)],
            capture_output=True,
            check=False,
        )
        return res.stdout


def golden(data: bytes) -> dict[str, object]:
    try:
        return to_dict(parse_diff(data))
    except DiffError as exc:
        return {"error": str(exc)}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*.diff"):
        stale.unlink()
    for stale in OUT.glob("*.json"):
        stale.unlink()
    written: dict[str, bytes] = {}
    for name, (before, after, extra, chmod) in git_cases().items():
        data = real_diff(before, after, *extra, chmod=chmod)
        check_anchors(data, before, after)
        written[name] = data
    written["plain_unified_diff_u"] = plain_unified()
    for name, data in crafted_cases(written["modified_multi_hunk"]):
        written[name] = data
    for name, data in sorted(written.items()):
        (OUT / f"{name}.diff").write_bytes(data)
        expected = json.dumps(golden(data), indent=1, ensure_ascii=False, sort_keys=True)
        (OUT / f"{name}.json").write_text(expected + "\n", encoding="utf-8")
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
