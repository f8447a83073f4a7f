"""Depth from the code around the change (issue #11 item 3, design §9).

The changed lines rarely say why a change matters; the definition they sit in does. For each side
of a hunk (new: added lines, old: deleted lines) this module finds, with the syntax layer:

* which changed lines are code at all -- a line that holds only comments, a docstring or string
  literals is not, and a pair of lines that differ only inside string literals or comments
  changes no code (:class:`HunkCode`);
* the **scope** of each changed line: its innermost enclosing function or method, else the
  top-level statement it belongs to (an Express handler passed to ``app.get``), else the hunk;
* the **sinks** in that scope, from the per-language catalogues (``data/sinks/*.yaml``, merged
  with ``classify.sinks``): calls by callee, patterns over code lines, tree-sitter node types;
* whether the change **reaches** a sink: a changed line is the sink's own line; or it writes a
  name that the sink's line reads (before the sink); or it is control flow that decides whether
  the sink runs -- a branch, loop or handler whose extent holds the sink's line, or an exit
  (``return``, ``raise``, a branch that exits) before it. Anything else (a log message, a
  renamed unrelated local, a change after the last sink) does not reach it.

Pure: the trees come from :class:`~depthgate.core.syntax.CodeIndex`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick

from depthgate.core.diff import Hunk, Line, LineKind
from depthgate.core.languages import Language
from depthgate.core.routes import SinkRule
from depthgate.core.signatures import Signature, constants_at
from depthgate.core.syntax import Call, CodeIndex, Definition, Located, Side, SyntaxTree

# Names that say nothing about data: every method has them.
_STOP_WORDS = (
    "self this cls super true false none null nil undefined True False None i j k _ e err "
    "ctx args kwargs $this"
)
_STOP = frozenset(_STOP_WORDS.split())
# Words and operators without which a line has no control flow in any of the grammars: only a
# line with one is asked of the parser (which then decides).
_MAY_FLOW = re.compile(
    r"(?<![\w$])(if|elif|elsif|else|unless|for|foreach|while|until|do|loop|switch|case|when|match|"
    r"select|try|except|catch|finally|rescue|ensure|defer|with|return|raise|throw|break|continue|"
    r"goto|yield|exit|and|or|not|then)(?![\w$])|&&|\|\||\?|!"
)
_SCOPE_CAP = 400  # a top-level statement longer than this is no scope: the hunk is
_SINK_SPAN_CAP = 20  # lines of a multi-line call read for its arguments


@dataclass(frozen=True, slots=True)
class Scope:
    """The code a changed line belongs to on one side, in the file's line numbers."""

    side: Side
    kind: str  # function | method | class | statement | hunk
    name: str
    start: int
    end: int
    whole: bool  # parsed from the whole file (True) or from the hunk alone

    def describe(self) -> str:
        where = "" if self.whole else ", hunk only"
        lines = f"lines {self.start}-{self.end}{where}"
        if self.kind in ("function", "method"):
            return f"{self.kind} {self.name}() ({lines})"
        if self.kind == "statement":
            return f"top-level statement ({lines})"
        if self.kind == "hunk":
            return f"the hunk's lines ({lines})"
        if self.kind == "module":
            return f"module ({lines})"
        return f"{self.kind} {self.name} ({lines})"

    def to_dict(self) -> dict[str, object]:
        return {
            "side": self.side,
            "kind": self.kind,
            "name": self.name if self.kind not in ("statement", "hunk") else None,
            "start": self.start,
            "end": self.end,
            "whole_file": self.whole,
        }


@dataclass(frozen=True, slots=True)
class SinkHit:
    kind: str  # eval, shell, sql, ... (the catalogue entry's kind)
    rule: str  # the catalogue entry: python.eval
    line: int
    end: int
    what: str  # "calls eval", "has .innerHTML ="
    names: frozenset[str]  # the names the sink's lines read (its callee's own names left out)


@dataclass(frozen=True, slots=True)
class SinkReach:
    hit: SinkHit
    scope: Scope
    changed: Line
    how: str  # "sink changed", "guard changed", "data 'x' changed"

    def detail(self) -> str:
        sign = "-" if self.changed.kind is LineKind.DELETED else "+"
        no = self.changed.old_no if self.changed.kind is LineKind.DELETED else self.changed.new_no
        owner = (
            f"enclosing {self.scope.name}()"
            if self.scope.kind in ("function", "method")
            else f"enclosing {self.scope.describe()}"
        )
        old = " (old side)" if self.scope.side == "old" else ""
        return f"{owner}{old} {self.hit.what} (line {self.hit.line}); {self.how} on {sign}{no}"


class SinkCatalogue:
    """The ``classify.sinks`` rules of one config, compiled per language."""

    def __init__(self, rules: Mapping[str, SinkRule]) -> None:
        self._by_lang: dict[Language, list[_CompiledSink]] = {}
        for name, rule in rules.items():
            compiled = _CompiledSink.build(name, rule)
            for lang in rule.languages:
                self._by_lang.setdefault(lang, []).append(compiled)
        # every pattern of a language in one expression, a named group per rule: one search a
        # line finds which rule matches
        self._patterns: dict[Language, re.Pattern[str]] = {}
        self._joinless: set[Language] = set()
        self._by_callee: dict[Language, dict[str, list[_CompiledSink]]] = {}
        self._names: dict[Language, ahocorasick.Automaton | None] = {}
        self._with_nodes = {
            lang: [r for r in compiled_rules if r.nodes]
            for lang, compiled_rules in self._by_lang.items()
        }
        for lang, compiled_rules in self._by_lang.items():
            parts = [
                f"(?P<r{i}>{r.regex.pattern})"
                for i, r in enumerate(compiled_rules)
                if r.regex is not None
            ]
            try:
                if parts:
                    self._patterns[lang] = re.compile("|".join(parts))
            except re.error:  # a back-reference renumbered by the join: no joined expression
                self._joinless.add(lang)
        self._literals = {
            lang: _literal_automaton([r.regex for r in compiled_rules if r.regex is not None])
            for lang, compiled_rules in self._by_lang.items()
        }

    def for_language(self, language: Language) -> list[_CompiledSink]:
        return self._by_lang.get(language, [])

    def for_callee(self, language: Language, name: str) -> list[_CompiledSink]:
        """The rules that may match a call of ``name`` (its last name): one dict lookup a call."""
        return self._callees(language).get(name, [])

    def _callees(self, language: Language) -> dict[str, list[_CompiledSink]]:
        if language not in self._by_callee:
            index: dict[str, list[_CompiledSink]] = {}
            for r in self.for_language(language):
                for key in {*(b.rsplit(".", 1)[-1] for b in r.bare), *r.methods, *r.dotted}:
                    if r not in index.setdefault(key, []):
                        index[key].append(r)
            self._by_callee[language] = index
        return self._by_callee[language]

    def may_call(self, language: Language, text: str) -> bool:
        """False only when no callee name of the language's call rules occurs in ``text`` as a
        word of its own: then no call on those lines can be a sink (a callee is a name token on
        its own line, and a name token never has a letter or ``_`` just before it, nor a letter,
        digit or ``_`` just after), and the parser need not be asked for the calls. One
        Aho-Corasick pass, stopping at the first such occurrence."""
        if language not in self._names:
            self._names[language] = _name_automaton(self._callees(language))
        automaton = self._names[language]
        if automaton is None:  # no names: no call is a sink; unusable names: always ask
            return bool(self._callees(language))
        for end, name in automaton.iter(text):
            start = end - len(name) + 1
            if (start == 0 or text[start - 1] not in _LEFT) and (
                end + 1 == len(text) or text[end + 1] not in _RIGHT
            ):
                return True
        return False

    def may_match(self, language: Language, text: str) -> bool:
        """False only when none of the language's patterns can match anywhere in ``text``: every
        match of each pattern contains one of the pattern's necessary literals (see
        :func:`necessary_literals`), and none of them occurs in the text. True whenever that
        cannot be told (a pattern without such literals, text that is not ASCII)."""
        automaton = self._literals.get(language)
        if automaton is None or not text.isascii():
            return True
        return next(automaton.iter(text.lower()), None) is not None

    def with_nodes(self, language: Language) -> list[_CompiledSink]:
        """The language's rules that name tree-sitter node types, in catalogue order."""
        return self._with_nodes.get(language, [])

    def patterns(self, language: Language) -> re.Pattern[str] | None:
        return self._patterns.get(language)

    @property
    def joinless(self) -> set[Language]:
        return self._joinless


# What may not touch a name token (ASCII: any other character counts as a boundary, which can only
# make ``may_call`` say yes more often).
_LEFT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_RIGHT = _LEFT | frozenset("0123456789")


def word_automaton(words: Iterable[str]) -> ahocorasick.Automaton | None:
    """One Aho-Corasick automaton of ``words`` (each its own value): one pass finds them all.
    None without words."""
    unique = sorted(set(words))
    if not unique:
        return None
    automaton = ahocorasick.Automaton()
    for w in unique:
        automaton.add_word(w, w)
    automaton.make_automaton()
    return automaton


def _name_automaton(names: Iterable[str]) -> ahocorasick.Automaton | None:
    """An automaton of callee names; None without names or with one that text search cannot
    stand for (empty, or a decoding's replacement character, which the source text lacks)."""
    words = set(names)
    if any(not w or "\ufffd" in w for w in words):
        return None
    return word_automaton(words)


def _literal_automaton(patterns: list[re.Pattern[str]]) -> ahocorasick.Automaton | None:
    """One automaton of the lower-cased necessary literals of all ``patterns``; None when a
    pattern has none that are ASCII (then no text can be ruled out)."""
    words: set[str] = set()
    for rx in patterns:
        found = necessary_literals(rx)
        if not found or not all(w.isascii() for w in found):
            return None
        words |= {w.lower() for w in found}
    return word_automaton(words)


def necessary_literals(rx: re.Pattern[str]) -> frozenset[str] | None:
    """Strings one of which every match of ``rx`` contains (as written, or in another case when
    the pattern ignores case), or None when there are none to be had.

    Read from the parsed pattern: a run of literal characters is one string; a group, an atomic
    group or a repeat of at least once needs what its body needs; an alternation needs one of
    what each branch needs; a character class of a few literal characters needs one of them; of
    the parts of a sequence, the one with the longest such strings stands for the sequence.
    Anything else (anchors, look-arounds, other classes, back-references) needs nothing. The
    parser is Python's own (``re._parser``); should it ever read differently, nothing is
    ruled out."""
    if _RE_PARSER is None:
        return None
    try:
        return _needed(_RE_PARSER.parse(rx.pattern, rx.flags))
    except Exception:  # noqa: BLE001 - a private parser that changed: no prefilter, never wrong
        return None


def _re_parser() -> Any:
    try:
        return importlib.import_module("re._parser")
    except ImportError:  # a Python without it: every pattern is searched
        return None


_RE_PARSER: Any = _re_parser()
_SMALL_CLASS = 8  # a class of up to this many literal characters needs one of them


def _needed(seq: Any) -> frozenset[str] | None:
    """Necessary strings of a parsed sequence (see :func:`necessary_literals`)."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def better(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or _strength(found) > _strength(best)):
            best = found

    for op, av in seq:
        name = op.name
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if run:
            better(frozenset({"".join(run)}))
            run = []
        if name == "SUBPATTERN":
            better(_needed(av[3]))
        elif name == "ATOMIC_GROUP":
            better(_needed(av))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if av[0] >= 1:
                better(_needed(av[2]))
        elif name == "BRANCH":
            alts = [_needed(alt) for alt in av[1]]
            if all(alts):
                better(frozenset().union(*(a for a in alts if a)))
        elif name == "IN" and len(av) <= _SMALL_CLASS and all(o.name == "LITERAL" for o, _ in av):
            better(frozenset(chr(c) for _, c in av))
    if run:
        better(frozenset({"".join(run)}))
    return best


def _strength(found: frozenset[str]) -> tuple[int, int]:
    return (min(map(len, found)), -len(found))


def _first_pattern(
    joined: re.Pattern[str] | None, rules: list[_CompiledSink], text: str
) -> tuple[_CompiledSink, re.Match[str]] | None:
    """The first rule whose patterns match ``text``, by the joined expression when there is one."""
    if joined is not None:
        m = joined.search(text)
        if m is None or m.lastgroup is None:
            return None
        return rules[int(m.lastgroup[1:])], m
    for rule in rules:
        if rule.regex is not None:
            m = rule.regex.search(text)
            if m is not None:
                return rule, m
    return None


@dataclass(frozen=True)
class _CompiledSink:
    name: str
    kind: str
    bare: frozenset[str]  # called by this name alone
    dotted: Mapping[str, tuple[str, ...]]  # written with this receiver, by last name
    methods: frozenset[str]  # a method of this name, any receiver
    regex: re.Pattern[str] | None
    nodes: frozenset[str]

    @classmethod
    def build(cls, name: str, rule: SinkRule) -> _CompiledSink:
        bare, methods = set(), set()
        dotted: dict[str, tuple[str, ...]] = {}
        for call in rule.calls:
            c = _normal(call)
            if c.startswith(".") and len(c) > 1:
                methods.add(c[1:])
            elif "." in c.strip("."):
                last = c.rsplit(".", 1)[1]
                dotted[last] = (*dotted.get(last, ()), c)
            else:
                bare.add(c)
        joined = "|".join(_scoped(p) for p in rule.patterns)
        return cls(
            name,
            rule.kind,
            frozenset(bare),
            dotted,
            frozenset(methods),
            re.compile(joined) if joined else None,
            frozenset(rule.nodes),
        )

    def matches_call(self, name: str, text: str) -> bool:
        """``text`` is the callee as written, already :func:`_normal`."""
        if text in self.bare:
            return True
        if name in self.methods and "." in text:
            return True
        return any(text == d or text.endswith("." + d) for d in self.dotted.get(name, ()))


def _scoped(pattern: str) -> str:
    """A leading ``(?i)`` made ``(?i:...)``, so that patterns join with ``|``."""
    m = re.match(r"^\(\?([aiLmsux]+)\)", pattern)
    return f"(?{m.group(1)}:{pattern[m.end() :]})" if m else f"(?:{pattern})"


def _normal(callee: str) -> str:
    """``$db->query``, ``Command::new``, ``a?.b`` -> ``db.query``, ``Command.new``, ``a.b``."""
    return callee.replace("->", ".").replace("::", ".").replace("?.", ".").lstrip("$\\")


@dataclass
class HunkCode:
    """What the syntax layer says about a hunk's changed lines."""

    located: dict[Side, Located]
    code: list[Line]  # changed lines that hold code
    quiet: list[Line]  # changed lines that hold only comments, docstrings or strings
    strings_only: bool  # the code is the same on both sides but for strings and comments
    flow: Line | None  # the first changed line of code that is control flow

    @property
    def parsed(self) -> bool:
        return bool(self.located)


def hunk_code(hunk: Hunk, language: Language, index: CodeIndex) -> HunkCode | None:
    """The hunk's changed lines as the syntax layer reads them; None without a grammar."""
    located: dict[Side, Located] = {}
    code: list[Line] = []
    quiet: list[Line] = []
    masked: dict[LineKind, list[str]] = {LineKind.ADDED: [], LineKind.DELETED: []}
    flow: Line | None = None
    read: set[Side] = set()
    for ln in hunk.lines:
        if ln.kind is LineKind.CONTEXT or not ln.text.strip():
            continue
        side: Side = "new" if ln.kind is LineKind.ADDED else "old"
        if side not in located:
            loc = index.locate(hunk, side, language)
            if loc is None:
                return None
            located[side] = loc
        loc = located[side]
        n = _file_line(ln)
        if side not in read:
            first = hunk.new_start if side == "new" else hunk.old_start
            count = hunk.new_lines if side == "new" else hunk.old_lines
            loc.tree.read_lines(first - loc.offset, first + count - loc.offset)
            read.add(side)
        if not loc.is_code_line(n):
            quiet.append(ln)
            continue
        code.append(ln)
        text = loc.tree.code_text(n - loc.offset)
        masked[ln.kind].append("".join(text.split()))
        if flow is None and _MAY_FLOW.search(text) and loc.tree.flow(n - loc.offset):
            flow = ln
    strings_only = bool(
        masked[LineKind.ADDED]
        and masked[LineKind.DELETED]
        and "".join(masked[LineKind.ADDED]) == "".join(masked[LineKind.DELETED])
    )
    return HunkCode(located, code, quiet, strings_only, flow)


def _file_line(ln: Line) -> int:
    n = ln.old_no if ln.kind is LineKind.DELETED else ln.new_no
    assert n is not None
    return n


def scope_of(loc: Located, line: int, side: Side, hunk: Hunk) -> Scope:
    """The innermost function or method around ``line``; else the top-level statement; else the
    hunk's own lines on that side."""
    d = loc.innermost_function(line)
    if d is not None:
        return _scope(d, loc, side)
    # In a fragment the top level is only the hunk's: one scope for all of it.
    span = loc.tree.statement_span(line - loc.offset) if loc.whole else None
    if span is not None and span[1] - span[0] < _SCOPE_CAP:
        return Scope(
            side, "statement", "statement", span[0] + loc.offset, span[1] + loc.offset, loc.whole
        )
    start = hunk.new_start if side == "new" else hunk.old_start
    count = hunk.new_lines if side == "new" else hunk.old_lines
    return Scope(side, "hunk", "hunk", start, start + max(count, 1) - 1, loc.whole)


def _scope(d: Definition, loc: Located, side: Side) -> Scope:
    return Scope(side, d.kind, d.name, d.start + loc.offset, d.end + loc.offset, loc.whole)


def enclosing_scopes(hunk: Hunk, code: HunkCode) -> dict[Side, Scope]:
    """Per side, the scope of the first changed line on it (what ``plan`` shows)."""
    out: dict[Side, Scope] = {}
    for ln in [*code.code, *code.quiet]:
        side: Side = "new" if ln.kind is LineKind.ADDED else "old"
        if side in code.located and (side not in out or out[side].kind in _NOT_DEFINITIONS):
            out[side] = scope_of(code.located[side], _file_line(ln), side, hunk)
    return out


_NOT_DEFINITIONS = ("statement", "hunk")


class SinkFinder:
    """Sinks per scope, found once per (tree, scope) and shared by a file's hunks."""

    def __init__(self, catalogue: SinkCatalogue) -> None:
        self.catalogue = catalogue
        self._cache: dict[tuple[int, int, int], tuple[SinkHit, ...]] = {}
        self._compiled: dict[int, frozenset[str]] = {}
        self._constants: dict[tuple[int, int], tuple[Signature, ...]] = {}

    def constants(self, tree: SyntaxTree, line: int) -> tuple[Signature, ...]:
        """The module-level constants of the statement holding ``line`` (found once)."""
        key = (id(tree), line)
        if key not in self._constants:
            self._constants[key] = constants_at(tree, line)
        return self._constants[key]

    def compiled_regexes(self, tree: SyntaxTree, language: Language) -> frozenset[str]:
        """The names the file binds to a compiled regular expression: the result of a call the
        catalogue's regex rules name as a compiler (``re.compile``, ``regex.compile``) or of a
        wrapper named for one (``_lazy_re_compile``). A method of such a name applied to a
        string (``WORDS_RE.search(text)``) applies the regex: it is a regex sink too."""
        key = id(tree)
        if key not in self._compiled:
            names: set[str] = set()
            rules = [r for r in self.catalogue.for_language(language) if r.kind == "regex"]
            if rules and tree.contains("compile"):
                for call in tree.calls_in(1, tree.line_count):
                    text = _normal(call.text)
                    named = call.name == "compile" and any(
                        r.matches_call(call.name, text) for r in rules
                    )
                    compiler = named or call.name.endswith("re_compile")
                    if compiler:
                        names.update(tree.bindings(call.line))
            self._compiled[key] = frozenset(names)
        return self._compiled[key]

    def sinks(self, loc: Located, scope: Scope, language: Language) -> tuple[SinkHit, ...]:
        key = (id(loc.tree), scope.start - loc.offset, scope.end - loc.offset)
        if key not in self._cache:
            self._cache[key] = tuple(self._find(loc, key[1], key[2], language))
        return self._cache[key]

    def _find(self, loc: Located, start: int, end: int, language: Language) -> Iterable[SinkHit]:
        rules = self.catalogue.for_language(language)
        if not rules:
            return
        tree, off = loc.tree, loc.offset
        regex_rule = next((r for r in rules if r.kind == "regex"), None)
        text = "\n".join(tree.line_text(n) for n in range(start, end + 1))
        calls = tree.calls_in(start, end) if self.catalogue.may_call(language, text) else ()
        for call in calls:
            candidates = self.catalogue.for_callee(language, call.name)
            if regex_rule is not None and call.name in _REGEX_METHODS and "." in call.text:
                receiver = _normal(call.text).rsplit(".", 1)[0].removeprefix("self.")
                if receiver in self.compiled_regexes(tree, language):
                    yield _call_hit(regex_rule, tree, call, off)
                    continue
            written = _normal(call.text) if candidates else ""
            for rule in candidates:
                if rule.matches_call(call.name, written):
                    last = min(max(call.end, call.line), call.line + _SINK_SPAN_CAP)
                    names = _names(tree, call.line, last) - set(re.findall(r"[\w$]+", call.text))
                    yield SinkHit(
                        rule.kind,
                        rule.name,
                        call.line + off,
                        last + off,
                        f"calls {call.text}",
                        frozenset(names),
                    )
                    break
        joined = self.catalogue.patterns(language)
        if not self.catalogue.may_match(language, text):
            pass  # no pattern can match these lines: nothing to search
        elif joined is not None:
            # one search over the scope's text, not one per line
            seen: set[int] = set()
            for m in joined.finditer(text):
                n = start + text.count("\n", 0, m.start())
                if n in seen or m.lastgroup is None or not tree.is_code_line(n):
                    continue
                seen.add(n)
                rule = rules[int(m.lastgroup[1:])]
                yield _pattern_hit_of(rule, tree, n, off, m)
        elif language in self.catalogue.joinless:
            for n in range(start, end + 1):
                found = _first_pattern(None, rules, tree.line_text(n))
                if found is not None and tree.is_code_line(n):
                    yield _pattern_hit_of(found[0], tree, n, off, found[1])
        for rule in self.catalogue.with_nodes(language):
            for n in tree.node_lines(rule.nodes, start, end):
                yield SinkHit(
                    rule.kind,
                    rule.name,
                    n + off,
                    n + off,
                    "has a regular expression literal"
                    if "regex" in rule.nodes
                    else f"has {'/'.join(sorted(rule.nodes))}",
                    frozenset(_names(tree, n, n)),
                )


# Methods of a compiled regular expression that apply it to a string.
_REGEX_METHODS = frozenset(
    {"search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split", "scanner"}
)


def _call_hit(rule: _CompiledSink, tree: SyntaxTree, call: Call, off: int) -> SinkHit:
    last = min(max(call.end, call.line), call.line + _SINK_SPAN_CAP)
    names = _names(tree, call.line, last) - set(re.findall(r"[\w$]+", call.text))
    return SinkHit(
        rule.kind, rule.name, call.line + off, last + off, f"calls {call.text}", frozenset(names)
    )


def _pattern_hit_of(
    rule: _CompiledSink, tree: SyntaxTree, n: int, off: int, m: re.Match[str]
) -> SinkHit:
    return SinkHit(
        rule.kind,
        rule.name,
        n + off,
        n + off,
        f"has {m.group(0).strip()[:40]!r}",
        frozenset(_names(tree, n, n)),
    )


def _names(tree: SyntaxTree, start: int, end: int) -> set[str]:
    out: set[str] = set()
    for n in range(start, end + 1):
        out |= tree.identifiers(n)
    return out - _STOP


class _Sides:
    """What each side of a hunk's changed lines holds, for comparing one side with the other:
    the literals written (strings, regular expressions) and the names bound with their values."""

    def __init__(self, code: HunkCode) -> None:
        self.code = code
        self._literals: dict[Side, frozenset[str]] = {}
        self._bindings: dict[Side, frozenset[tuple[str, str]]] = {}

    def _lines(self, side: Side) -> list[int]:
        kind = LineKind.ADDED if side == "new" else LineKind.DELETED
        loc = self.code.located.get(side)
        if loc is None:
            return []
        lines = [*self.code.code, *self.code.quiet]
        return [_file_line(ln) - loc.offset for ln in lines if ln.kind is kind]

    def literals(self, side: Side) -> frozenset[str]:
        if side not in self._literals:
            loc = self.code.located.get(side)
            found: set[str] = set()
            if loc is not None:
                for n in self._lines(side):
                    found |= loc.tree.literals(n)
            self._literals[side] = frozenset(found)
        return self._literals[side]

    def bindings(self, side: Side) -> frozenset[tuple[str, str]]:
        if side not in self._bindings:
            loc = self.code.located.get(side)
            found: set[tuple[str, str]] = set()
            if loc is not None:
                for n in self._lines(side):
                    found |= set(loc.tree.bindings(n).items())
            self._bindings[side] = frozenset(found)
        return self._bindings[side]


def _other(side: Side) -> Side:
    return "old" if side == "new" else "new"


def reaches(hunk: Hunk, language: Language, code: HunkCode, finder: SinkFinder) -> SinkReach | None:
    """The first sink the change reaches (see the module's docstring), or None. The new side
    is asked first: what the change makes of the code.

    Regular expressions are data until they are applied: a changed line that holds a regex
    sink reaches it only when a literal on the line (the pattern) is not on the other side of
    the hunk as well -- an edit elsewhere on the line leaves the pattern as it was -- and a
    branch around a regex decides nothing about what it matches (a guard that exits before it,
    refusing input, still does). A name reaches a sink only when the value bound to it differs
    from the other side's: ``var x;`` next to ``var x, y;`` writes nothing, a parameter kept as
    it was carries the same data. A module-level constant whose value changed (string-only
    edits included) reaches the sinks that read it anywhere in the file."""
    ordered = sorted(code.code, key=lambda ln: ln.kind is not LineKind.ADDED)
    sides = _Sides(code)
    for ln in ordered:
        side: Side = "new" if ln.kind is LineKind.ADDED else "old"
        loc = code.located[side]
        n = _file_line(ln)
        scope = scope_of(loc, n, side, hunk)
        hits = finder.sinks(loc, scope, language)
        tree_line = n - loc.offset
        constant = (
            _changed_constant(loc, scope, tree_line, code, side, finder) if loc.whole else None
        )
        if constant is not None:
            reach = _module_level(loc, side, hunk, scope, ln, constant, language, finder)
            if reach is not None:
                return reach
        if not hits:
            continue
        for hit in hits:
            if hit.line <= n <= hit.end:
                if hit.kind == "regex":
                    written = loc.tree.literals(tree_line)
                    if written and written <= sides.literals(_other(side)):
                        continue  # the pattern is the same on both sides
                return SinkReach(hit, scope, ln, "sink changed")
        if code.strings_only:
            continue  # a string changed outside a sink's line reaches it through no local
        bound = sides.bindings(_other(side))
        data = {
            name
            for name, value in loc.tree.bindings(tree_line).items()
            if (name, value) not in bound and name not in _STOP
        }
        flows = loc.tree.flow(tree_line)
        for hit in hits:
            if hit.line <= n:
                continue  # the sink's own lines were asked above; one before it is not reached
            for f in flows:
                inside = f.start + loc.offset <= hit.line <= f.end + loc.offset
                around = f.kind != "exit" and inside and hit.kind != "regex"
                if around or (f.exits and not inside):
                    return SinkReach(hit, scope, ln, "guard changed")
            shared = data & hit.names
            if shared:
                return SinkReach(hit, scope, ln, f"data {sorted(shared)[0]!r} changed")
    return None


def _changed_constant(  # noqa: PLR0917 - the line and where it is, from reaches() alone
    loc: Located, scope: Scope, tree_line: int, code: HunkCode, side: Side, finder: SinkFinder
) -> str | None:
    """The module-level constant (core/signatures.py's rule) whose statement holds the line,
    when its code differs from the other side's constant of that name."""
    if scope.kind != "statement":
        return None
    mine = finder.constants(loc.tree, tree_line)
    if not mine:
        return None
    other = code.located.get(_other(side))
    if other is None or not other.whole:
        return mine[0].name
    # the other side's statement of the same name: the hunk's own counterpart line first
    theirs = other.tree.lines_naming(mine[0].name)
    for line in theirs:
        for t in finder.constants(other.tree, line):
            if t.name == mine[0].name and t.text == mine[0].text:
                return None
    return mine[0].name


def _module_level(  # noqa: PLR0917 - the reach's parts, from reaches() alone
    loc: Located,
    side: Side,
    hunk: Hunk,
    scope: Scope,
    ln: Line,
    name: str,
    language: Language,
    finder: SinkFinder,
) -> SinkReach | None:
    """A module-level constant whose value changed reaches the sinks that read it anywhere in
    the file (a pattern constant compiled in a function, a limit checked in a handler)."""
    for line in loc.tree.lines_naming(name):
        n = line + loc.offset
        if scope.start <= n <= scope.end:
            continue  # the statement's own sinks were asked already
        user = scope_of(loc, n, side, hunk)
        for hit in finder.sinks(loc, user, language):
            if hit.line <= n <= hit.end and name in hit.names:
                return SinkReach(hit, user, ln, f"module-level {name!r} changed")
    return None
