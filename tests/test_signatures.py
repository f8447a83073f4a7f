"""Definitions and signatures from the syntax tree (core/signatures.py), and the classifier's
signature rules built on them. The oracles are hand-written code samples and what a caller of
each would notice, worked out by hand."""

from __future__ import annotations

import difflib

import pytest

from depthgate.core.classify import Classifier
from depthgate.core.diff import parse_diff
from depthgate.core.languages import Language
from depthgate.core.routes import LoadedConfig
from depthgate.core.signatures import Param, Signature, bound_names, signature_change, signatures
from depthgate.core.source import FileSource, SourceMode, Sources
from depthgate.core.syntax import CodeIndex, parse_source


def sigs(text: str, lang: Language, path: str = "") -> dict[str, Signature]:
    tree = parse_source(text, lang, path)
    assert tree is not None
    return {s.name: s for s in signatures(tree)}


def test_python_parameters_kinds_and_defaults() -> None:
    found = sigs(
        "def f(a, b: int = 1, *args, c, d=2, **kw) -> Optional[str]:\n    pass\n"
        "@dec\ndef g(x, /, y, *, z): pass\n",
        Language.PYTHON,
    )
    f = found["f"]
    assert f.params == (
        Param("a", None, "positional"),
        Param("b", "1", "positional", "int"),
        Param("args", None, "var_positional"),
        Param("c", None, "keyword"),
        Param("d", "2", "keyword"),
        Param("kw", None, "var_keyword"),
    )
    assert f.returns == "Optional[str]"
    g = found["g"]
    assert g.line == 4  # the def line, not the decorator's
    assert [(p.name, p.kind) for p in g.params or ()] == [
        ("x", "positional"),
        ("y", "positional"),
        ("z", "keyword"),
    ]


def test_a_definition_named_in_a_docstring_or_comment_is_no_definition() -> None:
    found = sigs(
        'def real(a):\n    """Call it like\n    def fake(url):\n    """\n    # def other(x):\n',
        Language.PYTHON,
    )
    assert set(found) == {"real"}


@pytest.mark.parametrize(
    ("lang", "path", "text", "name", "public", "params"),
    [
        (Language.JAVASCRIPT, "a.js", "export function f(a, b = 1, ...r) {}\n", "f", True,
         [("a", None), ("b", "1"), ("r", None)]),
        (Language.JAVASCRIPT, "a.js", "function g(a) {}\n", "g", False, [("a", None)]),
        (Language.JAVASCRIPT, "a.js", "module.exports.h = function (p) {}\n", "h", True,
         [("p", None)]),
        (Language.TYPESCRIPT, "a.ts", "export function t(a: string, b?: number) {}\n", "t",
         True, [("a", None), ("b", "?")]),
        (Language.GO, "a.go", "func (s *S) Do(a, b int) error { return nil }\n", "Do", True,
         [("a", None), ("b", None)]),
        (Language.GO, "a.go", "func do(a int) {}\n", "do", False, [("a", None)]),
        (Language.JAVA, "A.java", "class A { public int m(String a) { return 0; } }\n", "m",
         True, [("a", None)]),
        (Language.JAVA, "A.java", "class A { private int n(String a) { return 0; } }\n", "n",
         False, [("a", None)]),
        (Language.RUST, "a.rs", "pub fn f(a: u32) -> u8 { 0 }\n", "f", True, [("a", None)]),
        (Language.CSHARP, "A.cs", "class A { public int M(int b = 1) { return 0; } }\n", "M",
         True, [("b", "1")]),
        (Language.PHP, "a.php", "<?php\nfunction f($a, int $b = 1) {}\n", "f", True,
         [("a", None), ("b", "1")]),
        (Language.RUBY, "a.rb", "def f(a, b = 1, c:)\nend\n", "f", True,
         [("a", None), ("b", "1"), ("c", None)]),
    ],
)  # fmt: skip
def test_parameters_and_public_surface_per_language(
    lang: Language,
    path: str,
    text: str,
    name: str,
    public: bool,
    params: list[tuple[str, str | None]],
) -> None:
    s = sigs(text, lang, path)[name]
    assert s.public is public
    assert [(p.name, p.default) for p in s.params or ()] == params


def test_module_level_constants_are_definitions() -> None:
    py = sigs("MAX_SIZE = 10\nlowercase = 1\ndef f():\n    INNER = 2\n", Language.PYTHON)
    assert py["MAX_SIZE"].kind == "constant"
    assert "lowercase" not in py  # not a constant by Python's convention
    assert "INNER" not in py  # not at module level
    js = sigs("export const K = 1\nconst f = () => 1\nfunction g() { const L = 2 }\n",
              Language.JAVASCRIPT)  # fmt: skip
    assert js["K"].kind == "constant"
    assert js["K"].public
    assert js["f"].kind == "function"
    assert "L" not in js


def test_names_bound_again_keep_a_definition_alive() -> None:
    tree = parse_source(
        "import asyncio\nfrom .x import fetch\nTimeoutError = asyncio.TimeoutError\n",
        Language.PYTHON,
    )
    assert tree is not None
    assert {"fetch", "TimeoutError", "asyncio"} <= bound_names(tree)


def one(text: str, lang: Language = Language.PYTHON, path: str = "") -> Signature:
    (s,) = [s for s in sigs(text, lang, path).values() if s.kind == "function"]
    return s


@pytest.mark.parametrize(
    ("old", "new", "lang", "change"),
    [
        ("def f(a, b): pass", "def f(a, c, b): pass", Language.PYTHON,
         "parameters reordered"),  # b moved: a positional caller now passes c
        ("def f(a, b=1, c=2): pass", "def f(a, b=1, x=0, c=2): pass", Language.PYTHON, None),
        ("def f(a, *, b): pass", "def f(a, *, c, b): pass", Language.PYTHON,
         "required parameter 'c' added"),
        ("def f(a) -> Dict[str, int]: pass", "def f(a) -> dict[str, int]: pass",
         Language.PYTHON, None),
        ("def f(self) -> Retry: pass", "def f(self) -> Self: pass", Language.PYTHON, None),
        ("func F(a int) {}", "func F(a string) {}", Language.GO,
         "type of parameter 'a' changed"),
        ("func F(a int) int { return 0 }", "func F(a int) string { return \"\" }", Language.GO,
         "return type 'int' -> 'string'"),
        ("function f(a, b) {}", "function f(a, b, c = 1) {}", Language.JAVASCRIPT, None),
        ("function f(a: string) {}", "function f(a: number) {}", Language.TYPESCRIPT, None),
        ("function f(a) {}", "function f(a, b) {}", Language.TYPESCRIPT,
         "required parameter 'b' added"),
    ],
)  # fmt: skip
def test_signature_change(old: str, new: str, lang: Language, change: str | None) -> None:
    path = "a.ts" if lang is Language.TYPESCRIPT else ""
    assert signature_change(one(old, lang, path), one(new, lang, path), lang) == change


# --- the classifier's signature rules, on whole files -----------------------------------------

OLD = '''def fetch(
    url,
    retries=3,
):
    """Fetch it: def fetch(url) is the old form."""
    return get(url)
'''
NEW_PARAM = '''def fetch(
    url,
    timeout,
    retries=3,
):
    """Fetch it: def fetch(url) is the old form."""
    return get(url)
'''
NEW_DOC = '''def fetch(
    url,
    retries=3,
):
    """Fetch it: def fetch(url, timeout) would be the new form."""
    return get(url)
'''


def classify_with_source(config: LoadedConfig, old: str, new: str) -> set[str]:
    path = "lib/api.py"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    diff = f"diff --git a/{path} b/{path}\n" + "".join(lines)
    sources = Sources(mode=SourceMode.REPO, files={path: FileSource(path, old, new)})
    classification = Classifier(config.config.classify).classify(
        parse_diff(diff), index=CodeIndex(sources)
    )
    return {r.rule + ": " + r.detail for d in classification.decisions for r in d.reasons}


def test_a_parameter_added_on_its_own_line_is_a_signature_change(
    default_config: LoadedConfig,
) -> None:
    """The hunk holds only the new parameter's line; the tree knows it is in fetch()'s
    signature (a line-by-line reader sees no definition at all)."""
    reasons = classify_with_source(default_config, OLD, NEW_PARAM)
    assert any(
        r.startswith("deep.public_signature") and "required parameter 'timeout' added" in r
        for r in reasons
    ), reasons


def test_a_definition_mentioned_in_a_docstring_changes_no_signature(
    default_config: LoadedConfig,
) -> None:
    reasons = classify_with_source(default_config, OLD, NEW_DOC)
    signature_rules = ("deep.public_signature", "deep.public_api_removed")
    assert not any(r.startswith(signature_rules) for r in reasons)


def test_a_change_below_a_constants_name_touches_no_signature(
    default_config: LoadedConfig,
) -> None:
    """A multi-line constant edited in its value: the constant is still there, unchanged for
    its users (and the classifier does not stumble over a statement it only partly holds)."""
    old = "NAMES = [\n    'a',\n    'b',\n]\n"
    new = "NAMES = [\n    'a',\n    'c',\n]\n"
    reasons = classify_with_source(default_config, old, new)
    assert not any(r.startswith(("deep.public_api_removed", "deep.cross_file")) for r in reasons)
