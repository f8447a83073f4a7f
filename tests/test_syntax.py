"""The syntax layer on tree-sitter: definitions, signatures, calls, imports, code vs comments and
strings, in every language it ships a grammar for. Expectations are read off the snippets."""

from __future__ import annotations

import pytest

from depthgate.core.diff import parse_diff
from depthgate.core.languages import Language
from depthgate.core.source import FileSource, SourceMode, Sources
from depthgate.core.syntax import SUPPORTED, CodeIndex, parse_source

PY = '''import os
from x import y


class Store(Base):
    """Keeps things."""

    @property
    def run(self, cmd,
            shell=False):
        # only a comment
        msg = "retry if it failed or not"
        return os.system(cmd)


def top(a):
    return eval(a)
'''


def test_python_definitions_signatures_and_parents() -> None:
    tree = parse_source(PY, Language.PYTHON)
    assert tree is not None
    shape = [(d.kind, d.name, d.start, d.end, d.header_end) for d in tree.definitions]
    assert shape == [
        ("class", "Store", 5, 13, 5),
        ("method", "run", 8, 13, 10),  # the decorator belongs to it; the signature spans 2 lines
        ("function", "top", 16, 17, 16),
    ]
    assert [d.name for d in tree.enclosing(13)] == ["run", "Store"]
    assert tree.enclosing(3) == ()
    assert tree.imports == ((1, 1), (2, 2))


def test_python_code_lines_exclude_comments_docstrings_and_blank_lines() -> None:
    tree = parse_source(PY, Language.PYTHON)
    assert tree is not None
    quiet = [n for n in range(1, tree.line_count + 1) if not tree.is_code_line(n)]
    assert quiet == [3, 4, 6, 7, 11, 14, 15, 18]  # a string assigned to a name is code (line 12)


def test_python_calls_by_callee_name() -> None:
    tree = parse_source(PY, Language.PYTHON)
    assert tree is not None
    assert [(c.line, c.name, c.text) for c in tree.calls_in(1, 18)] == [
        (13, "system", "os.system"),
        (17, "eval", "eval"),
    ]
    assert tree.calls_in(14, 16) == ()


SNIPPETS: dict[tuple[Language, str], tuple[str, list[tuple[str, str]], list[str], list[int]]] = {
    (Language.JAVASCRIPT, "a.js"): (
        '// c\nimport fs from "fs";\nexport function handler(req, res) {\n'
        "  res.send(`x ${req.q}`);\n}\nconst arrow = (a) => {\n  return eval(a);\n};\n",
        [("function", "handler"), ("function", "arrow")],
        ["send", "eval"],
        [1],
    ),
    (Language.TYPESCRIPT, "a.ts"): (
        'import x from "y";\ninterface I { a: string }\nexport class C {\n'
        "  run(a: string): void { eval(a); }\n}\n",
        [("class", "I"), ("class", "C"), ("method", "run")],
        ["eval"],
        [],
    ),
    (Language.TYPESCRIPT, "a.tsx"): (
        "export function A(p: P) {\n"
        "  return <div dangerouslySetInnerHTML={{ __html: p.x }} />;\n}\n",
        [("function", "A")],
        [],
        [],
    ),
    (Language.GO, "a.go"): (
        'package m\nimport "os/exec"\n// c\nfunc (s *S) Run(c string) error {\n'
        "\treturn exec.Command(c).Run()\n}\n",
        [("method", "Run")],
        ["Command", "Run"],
        [3],
    ),
    (Language.JAVA, "A.java"): (
        "import java.io.*;\nclass A {\n  /** doc */\n"
        "  public void run(String c) throws Exception {\n"
        "    Runtime.getRuntime().exec(c);\n  }\n}\n",
        [("class", "A"), ("method", "run")],
        ["getRuntime", "exec"],
        [3],
    ),
    (Language.RUBY, "a.rb"): (
        'require "open3"\nclass A\n  # c\n  def run(cmd)\n    system(cmd)\n  end\nend\n',
        [("class", "A"), ("method", "run")],
        ["require", "system"],
        [3],
    ),
    (Language.RUST, "a.rs"): (
        "use std::process::Command;\nimpl S {\n    // c\n    fn run(&self, c: &str) {\n"
        "        Command::new(c).spawn();\n    }\n}\n",
        [("class", "S"), ("method", "run")],
        ["new", "spawn"],
        [3],
    ),
    (Language.CSHARP, "A.cs"): (
        "using System;\nclass A {\n  // c\n  void Run(string c) {\n    Process.Start(c);\n  }\n}\n",
        [("class", "A"), ("method", "Run")],
        ["Start"],
        [3],
    ),
    (Language.PHP, "a.php"): (
        "<?php\nuse Foo\\Bar;\nclass A {\n  // c\n  function run($c) {\n"
        "    return shell_exec($c);\n"
        "  }\n}\n",
        [("class", "A"), ("method", "run")],
        ["shell_exec"],
        [4],
    ),
    (Language.SHELL, "a.sh"): (
        '#!/bin/sh\n# c\nrun() {\n  eval "$1"\n}\n',
        [("function", "run")],
        ["eval"],
        [1, 2],
    ),
}


@pytest.mark.parametrize(("language", "path"), list(SNIPPETS), ids=str)
def test_every_language(language: Language, path: str) -> None:
    text, defs, calls, comment_lines = SNIPPETS[(language, path)]
    tree = parse_source(text, language, path)
    assert tree is not None
    assert not tree.has_errors
    assert [(d.kind, d.name) for d in tree.definitions] == defs
    assert [c.name for c in tree.calls_in(1, tree.line_count)] == calls
    last = text.count("\n")
    assert [n for n in range(1, last + 1) if not tree.is_code_line(n)] == comment_lines


def test_every_supported_language_has_a_snippet() -> None:
    assert {lang for lang, _ in SNIPPETS} | {Language.PYTHON} == set(SUPPORTED)


def test_fragments_and_unknown_languages() -> None:
    # a hunk's new side without its file: tree-sitter recovers, and the answers are about it
    fragment = "        if user.is_admin:\n            return render(template)\n"
    tree = parse_source(fragment, Language.PYTHON)
    assert tree is not None
    assert [c.name for c in tree.calls_in(1, 2)] == ["render"]
    assert parse_source("a: 1\n", Language.YAML) is None


def test_non_ascii_columns() -> None:
    tree = parse_source("naïve = '€'  # ü\nb = 1\n", Language.PYTHON)
    assert tree is not None
    assert tree.is_code_line(1)
    only = parse_source("s = 1\n'€ü' # ä\n", Language.PYTHON)
    assert only is not None
    assert not only.is_code_line(2)


def test_code_index_uses_the_file_and_falls_back_to_the_hunk_fragment() -> None:
    new = PY.replace("return eval(a)", "return safe_eval(a)")
    diff = parse_diff(
        "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
        "@@ -16,2 +16,2 @@ def top(a):\n def top(a):\n"
        "-    return eval(a)\n+    return safe_eval(a)\n"
    )
    (hunk,) = diff.hunks
    with_source = CodeIndex(Sources(SourceMode.REPO, {"m.py": FileSource("m.py", PY, new)}))
    located = with_source.locate(hunk, "new", Language.PYTHON)
    assert located is not None
    assert located.whole
    assert [d.name for d in located.enclosing(17)] == ["top"]
    assert [c.name for c in located.tree.calls_in(17, 17)] == ["safe_eval"]
    old = with_source.locate(hunk, "old", Language.PYTHON)
    assert old is not None
    assert [c.name for c in old.tree.calls_in(17, 17)] == ["eval"]
    # no source: the hunk's own lines, numbered as in the file
    fragment = CodeIndex().locate(hunk, "new", Language.PYTHON)
    assert fragment is not None
    assert not fragment.whole
    assert [d.name for d in fragment.enclosing(17)] == ["top"]
    assert fragment.is_code_line(17)
