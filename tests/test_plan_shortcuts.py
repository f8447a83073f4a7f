"""The plan's shortcuts (its speed, issue #11) rule out only what cannot be there.

``SinkCatalogue.may_call`` skips asking the parser for a scope's calls when no callee name of the
call rules is a word of the scope's text; ``may_match`` skips the pattern search when none of
the patterns' necessary literals occurs in it. Both may say yes too often, never no wrongly.
The oracles are the parser's own calls and Python's own regular expression engine.
``SyntaxTree.innermost_function`` is the first non-class definition of ``enclosing``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthgate.core.depth import (
    Scope,
    SinkCatalogue,
    SinkFinder,
    _CompiledSink,
    necessary_literals,
)
from depthgate.core.languages import Language
from depthgate.core.routes import LoadedConfig, SinkRule
from depthgate.core.syntax import Located, parse_source

# Patterns whose necessary strings are worked out by hand, and the parts a reader checks them by.
HAND = [
    (r"\.headers\[[^\]]+\]", {".headers["}),
    (r"(?i)[\"'](set-cookie|host)[\"']", {"set-cookie", "host"}),
    (r"\b(window\.)?location(\.href)?\s*=", {"location"}),  # optional parts need nothing
    (r"x*", None),  # matches the empty string: nothing is necessary
    (r"(a|)b", {"b"}),  # an empty branch: the branch needs nothing, "b" does
    (r"(?:ab){2,}", {"ab"}),
    (r"(?:ab){0,3}c", {"c"}),
    (r"[\"']", {'"', "'"}),
    (r"[a-z]+", None),  # a range is no small set of characters
    (r"(\w)\1", None),
    (r"(?<=foo)bar", {"bar"}),  # look-arounds need nothing of the match
]


@pytest.mark.parametrize(("pattern", "expected"), HAND)
def test_necessary_literals_by_hand(pattern: str, expected: set[str] | None) -> None:
    found = necessary_literals(re.compile(pattern))
    assert (set(found) if found is not None else None) == expected


def _default_patterns(config: LoadedConfig) -> list[str]:
    return sorted({p for rule in config.config.classify.sinks.values() for p in rule.patterns})


# Texts made of the pieces the catalogues' patterns are made of, so that matches happen.
PIECES = [
    "document.cookie", "innerHTML", ".headers[", "x", "'", '"', "[", "]", " = ", "==", "=",
    "(", ")", "\n", "location", "Location", "LOCATION", "set-cookie", "SET-COOKIE", "__proto__",
    "constructor", "setTimeout", "+", "`", "$", "$_SESSION[", "eval", "require", "import",
    ".html_safe", "<%==", "=~", "{{{", "{!!", "unsafe", "transmute", "_", "safe", "|", "#{",
    ".where(", "echo", ";", "InsecureSkipVerify", ".Header().Set(", "[Authorize",
    "\u017f", "\u212a",
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_every_match_holds_a_necessary_literal(default_config: LoadedConfig, text: str) -> None:
    for pattern in [*_default_patterns(default_config), *(p for p, _ in HAND)]:
        rx = re.compile(pattern)
        found = necessary_literals(rx)
        if found is None:
            continue
        for m in rx.finditer(text):
            assert any(w.lower() in m.group(0).lower() for w in found), (pattern, m.group(0))


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_may_match_never_rules_out_a_match(default_config: LoadedConfig, text: str) -> None:
    catalogue = SinkCatalogue(default_config.config.classify.sinks)
    for language in Language:
        joined = catalogue.patterns(language)
        if joined is not None and joined.search(text):
            assert catalogue.may_match(language, text), (language, text)


def test_may_match_rules_out_text_without_the_literals(default_config: LoadedConfig) -> None:
    catalogue = SinkCatalogue(default_config.config.classify.sinks)
    plain = "    value_1 = compute(item, 1)\n    if item.flag_1:\n        return 1\n"
    assert not catalogue.may_match(Language.PYTHON, plain)
    assert catalogue.may_match(Language.PYTHON, plain + "    resp.headers['X'] = v\n")
    assert catalogue.may_match(Language.PYTHON, plain + "    # \u017f\n")  # not ASCII: searched


PY_NAMES = ["eval", "open", "put", "loads", "execute", "compute", "run"]
# What may stand around a name: nothing, word characters of the same token, other tokens.
AROUND = ["", "x", "_", "9", ".", " ", "$", "(", "é", "a.", "\n"]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.sampled_from(AROUND), st.sampled_from(PY_NAMES), st.sampled_from(AROUND)),
        min_size=1,
        max_size=4,
    )
)
def test_may_call_never_hides_a_sink_call(
    default_config: LoadedConfig, parts: list[tuple[str, str, str]]
) -> None:
    catalogue = SinkCatalogue(default_config.config.classify.sinks)
    text = "".join(f"{a}{name}{b}(arg)\n" for a, name, b in parts)
    tree = parse_source(text, Language.PYTHON, "x.py")
    assert tree is not None
    sink_calls = [
        c
        for c in tree.calls_in(1, tree.line_count)
        if catalogue.for_callee(Language.PYTHON, c.name)
    ]
    if sink_calls:
        assert catalogue.may_call(Language.PYTHON, text), (text, sink_calls)


def test_may_call_rules_out_names_inside_other_words(default_config: LoadedConfig) -> None:
    catalogue = SinkCatalogue(default_config.config.classify.sinks)
    assert not catalogue.may_call(Language.PYTHON, "value = compute(item)\n")  # .put, inside
    assert catalogue.may_call(Language.PYTHON, "value = x.put(item)\n")


def test_unusable_callee_names_always_ask() -> None:
    rule = SinkRule(kind="odd", languages=[Language.PYTHON], calls=["."])  # an empty last name
    catalogue = SinkCatalogue({"python.odd": rule})
    assert catalogue.may_call(Language.PYTHON, "nothing here")
    assert _CompiledSink.build("python.odd", rule).bare == frozenset({"."})


def _unfiltered(catalogue: SinkCatalogue) -> SinkFinder:
    """The same search with both shortcuts switched off: what it finds is the oracle."""

    class Always(SinkCatalogue):
        def may_call(self, language: Language, text: str) -> bool:
            return True

        def may_match(self, language: Language, text: str) -> bool:
            return True

    always = Always.__new__(Always)
    always.__dict__.update(catalogue.__dict__)
    return SinkFinder(always)


def test_the_shortcuts_find_what_the_full_search_finds(default_config: LoadedConfig) -> None:
    """Every definition of depthgate's own source, as a scope: the same sinks, in order."""
    catalogue = SinkCatalogue(default_config.config.classify.sinks)
    fast, full = SinkFinder(catalogue), _unfiltered(catalogue)
    root = Path(__file__).resolve().parents[1] / "src" / "depthgate"
    scopes = 0
    hits = 0
    for path in sorted(root.rglob("*.py")):
        tree = parse_source(path.read_text(encoding="utf-8"), Language.PYTHON, str(path))
        assert tree is not None
        loc = Located(tree, 0, True)
        spans = [(d.start, d.end) for d in tree.definitions] + [(1, tree.line_count)]
        for start, end in spans:
            scope = Scope("new", "function", "f", start, end, True)
            found = fast.sinks(loc, scope, Language.PYTHON)
            assert found == full.sinks(loc, scope, Language.PYTHON), (path, start, end)
            scopes += 1
            hits += len(found)
    assert scopes > 500  # the corpus has scopes, and sinks in them to find
    assert hits > 100


def test_innermost_function_is_the_first_non_class_of_enclosing() -> None:
    root = Path(__file__).resolve().parents[1] / "src" / "depthgate"
    lines = 0
    for path in sorted(root.rglob("*.py")):
        tree = parse_source(path.read_text(encoding="utf-8"), Language.PYTHON, str(path))
        assert tree is not None
        for line in range(0, tree.line_count + 2):
            want = next((d for d in tree.enclosing(line) if d.kind != "class"), None)
            assert tree.innermost_function(line) == want, (path, line)
            lines += 1
    assert lines > 10_000
