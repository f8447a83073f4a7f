"""The syntax layer: what a file's code is, read by tree-sitter (design §9).

One grammar wheel per language (``tree-sitter-python``, ``-javascript``, ...), each shipping its
compiled grammar: nothing is downloaded. :func:`parse_source` turns a file's text into a
:class:`SyntaxTree` that answers the questions the classifier and the packer ask:

* which definitions (functions, methods, classes, modules' top-level items) enclose a line, with
  their extent and where their signature ends -- :meth:`SyntaxTree.enclosing`;
* which lines are only comments or string literals (a docstring edit is not a logic change) --
  :meth:`SyntaxTree.is_code_line`;
* which calls a range of lines makes, by callee name -- :meth:`SyntaxTree.calls_in`;
* where the imports are -- :attr:`SyntaxTree.imports`.

tree-sitter is error-tolerant, so a hunk fragment (the new side of a hunk, without its file)
parses too; the answers are then about the fragment only. Everything here is pure: text in,
values out. Line numbers are 1-based, as in diffs.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Literal

import tree_sitter as ts

from depthgate.core.diff import Hunk, LineKind
from depthgate.core.languages import Language
from depthgate.core.source import DIFF_ONLY, Sources

Side = Literal["old", "new"]


@dataclass(frozen=True, slots=True)
class Definition:
    """A function, method, class (or similar) and where it is.

    ``header_end`` is the last line of its signature: ``start..header_end`` is what the fast tier
    shows, ``start..end`` the whole definition. ``parent`` is the index of the enclosing
    definition in :attr:`SyntaxTree.definitions`, or None at the top level.
    """

    kind: str  # function | method | class
    name: str
    start: int
    end: int
    header_end: int
    parent: int | None = None

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class Call:
    line: int
    name: str  # the callee's last name: ``os.path.join(...)`` -> ``join``
    text: str  # the callee as written, capped: ``os.path.join``
    end: int = 0  # the last line of the whole call, arguments included


@dataclass(frozen=True, slots=True)
class Flow:
    """A control-flow construct that starts on a line: what a guard is made of.

    ``kind`` is ``branch`` (if, switch, ternary, and/or), ``loop``, ``handler`` (try, except,
    catch) or ``exit`` (return, raise, throw, break, continue); ``exits`` says whether a branch's
    own lines leave the function or the loop (``if bad: raise``): a guard in front of what
    follows. ``start..end`` is the construct's extent.
    """

    kind: str
    start: int
    end: int
    exits: bool


class SyntaxTree:
    """A parsed file. Parsing happens once; each question runs a tree-sitter query over just
    the lines it is about (hunks are small, files can be large) and is cached."""

    def __init__(self, language: Language, tree: ts.Tree, data: bytes, text: str, key: str):
        self.language = language
        self._tree = tree
        self._data = data
        self._lines = text.split("\n")
        self._compiled = _compiled(key)
        self._key = key
        self._calls: dict[tuple[int, int], tuple[Call, ...]] = {}
        self._quiet: dict[int, list[tuple[int, int]]] = {}
        self._rows: dict[int, list[ts.Node]] = {}

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def has_errors(self) -> bool:
        return self._tree.root_node.has_error

    @cached_property
    def definitions(self) -> tuple[Definition, ...]:
        """Every definition of the file, sorted by start line, outer before inner."""
        return _definitions(self._matches)

    def contains(self, text: str) -> bool:
        """Whether the source holds ``text`` anywhere (a cheap test before a query)."""
        return text.encode("utf-8", "surrogateescape") in self._data

    @cached_property
    def _word_lines(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, list[int]] = {}
        for n, text in enumerate(self._lines, 1):
            for word in set(_WORD.findall(text)):
                out.setdefault(word, []).append(n)
        return {k: tuple(v) for k, v in out.items()}

    def lines_naming(self, name: str) -> tuple[int, ...]:
        """The lines whose text holds ``name`` as a whole word (code or not: the caller asks
        the tree about each)."""
        return self._word_lines.get(name, ())

    def top_level_node(self, line: int) -> ts.Node | None:
        """The top-level statement (a child of the root) that holds ``line``, or None."""
        if not 1 <= line <= len(self._lines):
            return None
        root = self._tree.root_node
        width = len(self._lines[line - 1].encode("utf-8", "surrogateescape"))
        n: ts.Node | None = root.descendant_for_point_range((line - 1, 0), (line - 1, width))
        while n is not None and n.parent is not None and n.parent.parent is not None:
            n = n.parent
        if n is None or n.parent is None:
            return None
        return n

    @property
    def root(self) -> ts.Node:
        """The tree's root node, for the readers of definitions (core/signatures.py)."""
        return self._tree.root_node

    @property
    def comment_types(self) -> frozenset[str]:
        return self._compiled.grammar.comments

    @cached_property
    def definition_nodes(self) -> tuple[tuple[str, str, ts.Node], ...]:
        """(kind, name, node) of every definition the grammar's query finds, in source order:
        the nodes :attr:`definitions` is made of."""
        return tuple(
            (kind, name, node)
            for kind, name, node in sorted(self._matches.values(), key=lambda t: t[2].start_byte)
        )

    @cached_property
    def _matches(self) -> dict[tuple[int, int], tuple[str, str, ts.Node]]:
        return _definition_matches(self._compiled, self._tree.root_node)

    @cached_property
    def imports(self) -> tuple[tuple[int, int], ...]:
        """(first, last) line of each import statement at the top level (or one level down, as
        Go's import blocks and PHP's namespaces put them)."""
        kinds = self._compiled.grammar.imports
        out = []
        for node in self._tree.root_node.children:
            for n in (node, *node.children):
                if n.type in kinds:
                    out.append((n.start_point.row + 1, n.end_point.row + 1))
        return tuple(sorted(set(out)))

    def enclosing(self, line: int) -> tuple[Definition, ...]:
        """The definitions that contain ``line``, innermost first."""
        defs = self.definitions
        at = bisect.bisect_right(self._starts, line) - 1
        # the innermost is the latest-starting definition that still reaches the line; the
        # others are its parents
        while at >= 0 and defs[at].end < line:
            at -= 1
        out = []
        index: int | None = at if at >= 0 else None
        while index is not None:
            d = defs[index]
            if d.start <= line <= d.end:
                out.append(d)
            index = d.parent
        return tuple(out)

    def innermost_function(self, line: int) -> Definition | None:
        """The first definition of :meth:`enclosing` that is not a class (a function or method),
        found without building the whole chain."""
        defs = self.definitions
        at = bisect.bisect_right(self._starts, line) - 1
        while at >= 0 and defs[at].end < line:
            at -= 1
        index: int | None = at if at >= 0 else None
        while index is not None:
            d = defs[index]
            if d.start <= line <= d.end and d.kind != "class":
                return d
            index = d.parent
        return None

    @cached_property
    def _starts(self) -> list[int]:
        return [d.start for d in self.definitions]

    def innermost(self, line: int) -> Definition | None:
        found = self.enclosing(line)
        return found[0] if found else None

    def definitions_named(self, name: str) -> tuple[Definition, ...]:
        return tuple(d for d in self.definitions if d.name == name)

    def calls_in(self, start: int, end: int) -> tuple[Call, ...]:
        """The calls whose callee name sits on lines ``start..end``, in line order."""
        key = (start, end)
        if key not in self._calls:
            cursor = ts.QueryCursor(self._compiled.calls)
            cursor.set_point_range((max(start - 1, 0), 0), (end, 0))
            calls = _calls(cursor, self._tree.root_node, self._data)
            self._calls[key] = tuple(c for c in calls if start <= c.line <= end)
        return self._calls[key]

    def is_code_line(self, line: int) -> bool:
        """False for a line that holds only comments, string literals and white space."""
        if not 1 <= line <= len(self._lines):
            return False
        text = self._lines[line - 1]
        if not text.strip():
            return False
        spans = self._quiet_spans(line)
        if not spans:
            return True
        covered = bytearray(len(text))
        for a, b in spans:
            covered[max(a, 0) : max(min(b, len(text)), 0)] = b"\x01" * max(
                min(b, len(text)) - max(a, 0), 0
            )
        return any(not covered[i] and not ch.isspace() for i, ch in enumerate(text))

    def code_text(self, line: int) -> str:
        """The line with its comments dropped and each string literal's content left out
        (``x = "a"  # b`` -> ``x = ""``): two lines with the same code text differ only in what
        the program never runs or only prints."""
        text = self.line_text(line)
        spans = sorted(self._quiet_spans(line))
        if not spans:
            return text.strip()
        out, at = [], 0
        for a, b in spans:
            if a < at:
                continue
            out.append(text[at:a])
            out.append(
                '""' if text[a : a + 1] not in "#/;-" or text[a:b].startswith(("'", '"')) else ""
            )
            at = max(b, at)
        out.append(text[at:])
        return "".join(out).strip()

    def identifiers(self, line: int) -> frozenset[str]:
        """The names written on a line as code (variables, attributes, functions): not the words
        of its comments or strings, but those of an f-string's or template's interpolations."""
        return frozenset(
            (n.text or b"").decode("utf-8", "replace")
            for n in self._row_nodes(line - 1)
            if n.child_count == 0 and _is_name(n.type)
        )

    def assigned(self, line: int) -> frozenset[str]:
        """The names a line writes: assignment targets, declared variables, loop variables and,
        on a definition's first line, its parameters. A line that only reads a name does not
        change the data behind it."""
        out: set[str] = set()
        for n in self._row_nodes(line - 1):
            if not n.is_named:
                continue
            target = None
            if n.type in _BINDERS or "assignment" in n.type or n.type.endswith("declarator"):
                target = (
                    n.child_by_field_name("left")
                    or n.child_by_field_name("name")
                    or n.child_by_field_name("pattern")
                    or n.child_by_field_name("target")
                )
            elif n.type in _PARAMETER_LISTS:
                target = n
            if target is None:
                continue
            stack = [target]
            while stack:
                t = stack.pop()
                if t.child_count == 0 and _is_name(t.type):
                    out.add((t.text or b"").decode("utf-8", "replace"))
                stack.extend(t.children)
        return frozenset(out)

    def literals(self, line: int) -> frozenset[str]:
        """The string and regular-expression literals that start on a line, as written."""
        kinds = self._compiled.grammar.strings | _REGEX_LITERALS
        return frozenset(
            (n.text or b"")[:400].decode("utf-8", "replace")
            for n in self._row_nodes(line - 1)
            if n.type in kinds
        )

    def bindings(self, line: int) -> dict[str, str]:
        """The names a line writes, each with what it writes: the assigned value's code (the
        iterable of a loop variable, a parameter's whole declaration with its default). A
        declaration without a value (``var x;``, ``x: int``) writes nothing, so it is not here;
        comparing two lines' bindings tells a name whose data changed from one only re-declared
        or re-formatted next to a change."""
        out: dict[str, str] = {}
        for n in self._row_nodes(line - 1):
            if not n.is_named:
                continue
            if n.type in _PARAMETER_LISTS:
                for param in n.named_children:
                    if param.type in self._compiled.grammar.comments:
                        continue
                    value = _squashed(param)
                    name_node = (
                        param.child_by_field_name("name")
                        or param.child_by_field_name("pattern")
                        or param.child_by_field_name("left")
                        or param
                    )
                    for name in _leaf_names(name_node):
                        out.setdefault(name, value)
                continue
            if not (n.type in _BINDERS or "assignment" in n.type or n.type.endswith("declarator")):
                continue
            target = (
                n.child_by_field_name("left")
                or n.child_by_field_name("name")
                or n.child_by_field_name("pattern")
                or n.child_by_field_name("target")
            )
            if target is None:
                continue
            value_node = n.child_by_field_name("right") or n.child_by_field_name("value")
            if value_node is None:
                if "declarator" in n.type or n.type in ("assignment", "variable_declaration"):
                    continue  # declared, nothing written
                value = _squashed(n)
            else:
                value = _squashed(value_node)
            for name in _leaf_names(target):
                out.setdefault(name, value)
        return out

    def flow(self, line: int) -> tuple[Flow, ...]:
        """The control-flow constructs that start on a line (see :class:`Flow`)."""
        out = []
        for n in self._row_nodes(line - 1):
            kind = _flow_kind(n)
            if kind is None:
                continue
            start, end = n.start_point.row + 1, n.end_point.row + 1
            exits = kind == "exit" or (kind == "branch" and _has_exit(n))
            out.append(Flow(kind, start, end, exits))
        return tuple(out)

    def node_lines(self, types: frozenset[str], start: int, end: int) -> tuple[int, ...]:
        """The lines in ``start..end`` where a node of one of ``types`` starts (a regular
        expression literal, a subshell, ...). Types the grammar does not have match nothing."""
        query = _node_query(self._key, tuple(sorted(types)))
        if query is None:
            return ()
        cursor = ts.QueryCursor(query)
        cursor.set_point_range((max(start - 1, 0), 0), (end, 0))
        rows = {n.start_point.row + 1 for n in cursor.captures(self._tree.root_node).get("n", [])}
        return tuple(sorted(r for r in rows if start <= r <= end))

    def statement_span(self, line: int) -> tuple[int, int] | None:
        """(first, last) line of the top-level statement that holds ``line``, or None."""
        starts, spans = self._top_level
        at = bisect.bisect_right(starts, line) - 1
        if at >= 0 and spans[at][0] <= line <= spans[at][1]:
            return spans[at]
        return None

    @cached_property
    def _top_level(self) -> tuple[list[int], list[tuple[int, int]]]:
        comments = self._compiled.grammar.comments
        spans = [
            (n.start_point.row + 1, n.end_point.row + 1)
            for n in self._tree.root_node.children
            if n.type not in comments
        ]
        return [a for a, _ in spans], spans

    def _row_nodes(self, row: int) -> list[ts.Node]:
        """Every node (named or not) that starts on ``row``: a line's tokens and constructs."""
        if row in self._rows:
            return self._rows[row]
        out: list[ts.Node] = []
        if 0 <= row < len(self._lines):
            width = len(self._lines[row].encode("utf-8", "surrogateescape"))
            top = self._tree.root_node.descendant_for_point_range((row, 0), (row, width))
            while top is not None and top.start_point.row == row and top.parent is not None:
                top = top.parent  # the construct the line opens, not just its first token
            stack = [top] if top is not None else []
            while stack:
                n = stack.pop()
                if n.end_point.row < row or n.start_point.row > row:
                    continue
                if n.start_point.row == row:
                    out.append(n)
                stack.extend(n.children)
        self._rows[row] = out
        return out

    def line_text(self, line: int) -> str:
        return self._lines[line - 1] if 1 <= line <= len(self._lines) else ""

    def _quiet_spans(self, line: int) -> list[tuple[int, int]]:
        if line not in self._quiet:
            self.read_lines(line, line)
        return self._quiet[line]

    def read_lines(self, start: int, end: int) -> None:
        """Find the comments and strings of lines ``start..end`` in one query (a hunk's lines
        are asked about one by one; one query for all of them is cheaper)."""
        rows = range(max(start - 1, 0), min(end, len(self._lines)))
        if not rows:
            return
        spans: dict[int, list[tuple[int, int]]] = {r: [] for r in rows}
        cursor = ts.QueryCursor(self._compiled.quiet)
        cursor.set_point_range((rows.start, 0), (rows.stop, 0))
        for node in cursor.captures(self._tree.root_node).get("quiet", []):
            (r0, c0), (r1, c1) = node.start_point, node.end_point
            for row in range(max(r0, rows.start), min(r1, rows.stop - 1) + 1):
                a = self._col(row, c0) if row == r0 else 0
                b = self._col(row, c1) if row == r1 else len(self._lines[row])
                spans[row].append((a, b))
        for row, found in spans.items():
            self._quiet.setdefault(row + 1, found)

    def _col(self, row: int, byte_col: int) -> int:
        """tree-sitter's columns are byte offsets; the line's text is str."""
        text = self._lines[row] if row < len(self._lines) else ""
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8", "surrogateescape")[:byte_col].decode("utf-8", "replace"))


@dataclass(frozen=True)
class _Grammar:
    load: Callable[[], object]  # the grammar wheel's language() capsule
    definitions: str  # query: @function / @class / @method captures, each with a @name
    comments: frozenset[str]
    strings: frozenset[str]
    calls: str  # query: @call (the call node) and @callee (the callee's name node)
    imports: frozenset[str]


def _load(module: str, attr: str = "language") -> Callable[[], object]:
    def load() -> object:
        mod = __import__(module)
        return getattr(mod, attr)()

    return load


_C_STRINGS = frozenset({"string_literal", "raw_string_literal", "char_literal"})

_GRAMMARS: dict[Language, _Grammar] = {
    Language.PYTHON: _Grammar(
        _load("tree_sitter_python"),
        """
        (function_definition name: (identifier) @name) @function
        (class_definition name: (identifier) @name) @class
        """,
        frozenset({"comment"}),
        frozenset({"string", "concatenated_string"}),
        """
        (call function: [(identifier) @callee (attribute attribute: (identifier) @callee)]) @call
        """,
        frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    ),
    Language.JAVASCRIPT: _Grammar(
        _load("tree_sitter_javascript"),
        """
        (function_declaration name: (identifier) @name) @function
        (generator_function_declaration name: (identifier) @name) @function
        (method_definition name: (_) @name) @method
        (class_declaration name: (identifier) @name) @class
        (variable_declarator name: (identifier) @name
          value: [(arrow_function) (function_expression)]) @function
        (assignment_expression left: (member_expression property: (property_identifier) @name)
          right: [(arrow_function) (function_expression)]) @function
        (pair key: (property_identifier) @name value: [(arrow_function) (function_expression)])
          @function
        """,
        frozenset({"comment"}),
        frozenset({"string", "template_string"}),
        """
        (call_expression function: [(identifier) @callee
          (member_expression property: (property_identifier) @callee)]) @call
        (new_expression constructor: [(identifier) @callee
          (member_expression property: (property_identifier) @callee)]) @call
        """,
        frozenset({"import_statement"}),
    ),
    Language.GO: _Grammar(
        _load("tree_sitter_go"),
        """
        (function_declaration name: (identifier) @name) @function
        (method_declaration name: (field_identifier) @name) @method
        (type_declaration (type_spec name: (type_identifier) @name)) @class
        """,
        frozenset({"comment"}),
        frozenset({"interpreted_string_literal", "raw_string_literal", "rune_literal"}),
        """
        (call_expression function: [(identifier) @callee
          (selector_expression field: (field_identifier) @callee)]) @call
        """,
        frozenset({"import_declaration"}),
    ),
    Language.JAVA: _Grammar(
        _load("tree_sitter_java"),
        """
        (method_declaration name: (identifier) @name) @method
        (constructor_declaration name: (identifier) @name) @method
        (class_declaration name: (identifier) @name) @class
        (interface_declaration name: (identifier) @name) @class
        (enum_declaration name: (identifier) @name) @class
        (record_declaration name: (identifier) @name) @class
        """,
        frozenset({"line_comment", "block_comment"}),
        frozenset({"string_literal", "character_literal"}),
        """
        (method_invocation name: (identifier) @callee) @call
        (object_creation_expression type: [(type_identifier) @callee
          (scoped_type_identifier (type_identifier) @callee)]) @call
        """,
        frozenset({"import_declaration"}),
    ),
    Language.RUBY: _Grammar(
        _load("tree_sitter_ruby"),
        """
        (method name: (_) @name) @method
        (singleton_method name: (_) @name) @method
        (class name: (_) @name) @class
        (module name: (_) @name) @class
        """,
        frozenset({"comment"}),
        frozenset({"string", "heredoc_body", "simple_symbol", "string_array", "symbol_array"}),
        """
        (call method: (identifier) @callee) @call
        """,
        frozenset(),
    ),
    Language.RUST: _Grammar(
        _load("tree_sitter_rust"),
        """
        (function_item name: (identifier) @name) @function
        (struct_item name: (type_identifier) @name) @class
        (enum_item name: (type_identifier) @name) @class
        (trait_item name: (type_identifier) @name) @class
        (impl_item type: (_) @name) @class
        (mod_item name: (identifier) @name) @class
        """,
        frozenset({"line_comment", "block_comment"}),
        _C_STRINGS,
        """
        (call_expression function: [(identifier) @callee
          (field_expression field: (field_identifier) @callee)
          (scoped_identifier name: (identifier) @callee)]) @call
        (macro_invocation macro: (identifier) @callee) @call
        """,
        frozenset({"use_declaration"}),
    ),
    Language.CSHARP: _Grammar(
        _load("tree_sitter_c_sharp"),
        """
        (method_declaration name: (identifier) @name) @method
        (constructor_declaration name: (identifier) @name) @method
        (local_function_statement name: (identifier) @name) @function
        (class_declaration name: (identifier) @name) @class
        (interface_declaration name: (identifier) @name) @class
        (struct_declaration name: (identifier) @name) @class
        (record_declaration name: (identifier) @name) @class
        """,
        frozenset({"comment"}),
        frozenset(
            {
                "string_literal",
                "verbatim_string_literal",
                "raw_string_literal",
                "interpolated_string_expression",
                "character_literal",
            }
        ),
        """
        (invocation_expression function: [(identifier) @callee
          (member_access_expression name: (identifier) @callee)]) @call
        (object_creation_expression type: [(identifier) @callee
          (qualified_name name: (identifier) @callee)]) @call
        """,
        frozenset({"using_directive"}),
    ),
    Language.PHP: _Grammar(
        _load("tree_sitter_php", "language_php"),
        """
        (function_definition name: (name) @name) @function
        (method_declaration name: (name) @name) @method
        (class_declaration name: (name) @name) @class
        (trait_declaration name: (name) @name) @class
        (interface_declaration name: (name) @name) @class
        """,
        frozenset({"comment"}),
        frozenset({"string", "encapsed_string", "heredoc", "nowdoc"}),
        """
        (function_call_expression function: [(name) @callee (qualified_name (name) @callee)]) @call
        (member_call_expression name: (name) @callee) @call
        (scoped_call_expression name: (name) @callee) @call
        (object_creation_expression [(name) @callee (qualified_name (name) @callee)]) @call
        """,
        frozenset({"namespace_use_declaration"}),
    ),
    Language.SHELL: _Grammar(
        _load("tree_sitter_bash"),
        """
        (function_definition name: (word) @name) @function
        """,
        frozenset({"comment"}),
        frozenset({"string", "raw_string", "heredoc_body", "ansi_c_string"}),
        """
        (command name: (command_name (word) @callee)) @call
        """,
        frozenset(),
    ),
}

_TS_DEFINITIONS = """
(interface_declaration name: (type_identifier) @name) @class
(type_alias_declaration name: (type_identifier) @name) @class
(enum_declaration name: (identifier) @name) @class
(abstract_class_declaration name: (type_identifier) @name) @class
(class_declaration name: (type_identifier) @name) @class
(function_signature name: (identifier) @name) @function
"""
# TypeScript's grammar is JavaScript's plus types: the same queries, less the class pattern
# (TypeScript names classes with type_identifier), plus its own declarations.
_JS = _GRAMMARS[Language.JAVASCRIPT]
_TS_BASE = _JS.definitions.replace("(class_declaration name: (identifier) @name) @class", "")
_GRAMMARS[Language.TYPESCRIPT] = _Grammar(
    _load("tree_sitter_typescript", "language_typescript"),
    _TS_BASE + _TS_DEFINITIONS,
    _JS.comments,
    _JS.strings,
    _JS.calls,
    _JS.imports,
)
_TSX = _Grammar(
    _load("tree_sitter_typescript", "language_tsx"),
    _TS_BASE + _TS_DEFINITIONS,
    _JS.comments,
    _JS.strings,
    _JS.calls,
    _JS.imports,
)
# JSX is parsed by the JavaScript grammar itself (it includes JSX).

SUPPORTED = frozenset(_GRAMMARS)
MAX_SOURCE_BYTES = 2 << 20  # larger text is not parsed: the caller falls back to the diff


@dataclass(frozen=True)
class _Compiled:
    language: ts.Language
    definitions: ts.Query
    calls: ts.Query
    quiet: ts.Query  # @quiet: comments and string literals; @import: import statements
    grammar: _Grammar


@cache
def _compiled(key: str) -> _Compiled:
    grammar = _TSX if key == "tsx" else _GRAMMARS[Language(key)]
    lang = ts.Language(grammar.load())
    quiet = " ".join(f"({t}) @quiet" for t in sorted(grammar.comments | grammar.strings))
    quiet += " " + " ".join(f"({t}) @import" for t in sorted(grammar.imports))
    return _Compiled(
        lang,
        ts.Query(lang, grammar.definitions),
        ts.Query(lang, grammar.calls),
        ts.Query(lang, quiet),
        grammar,
    )


@cache
def _node_query(key: str, types: tuple[str, ...]) -> ts.Query | None:
    """One query for nodes of these types, or None when the grammar has none of them."""
    lang = _compiled(key).language
    known = []
    for t in types:
        try:
            ts.Query(lang, f"({t}) @n")
        except (ts.QueryError, NameError, ValueError):
            continue
        known.append(f"({t}) @n")
    return ts.Query(lang, " ".join(known)) if known else None


def grammar_key(language: Language, path: str = "") -> str | None:
    """The grammar to parse ``path`` with, or None when there is none."""
    if language is Language.TYPESCRIPT and path.endswith(".tsx"):
        return "tsx"
    return language.value if language in _GRAMMARS else None


def parse_source(text: str, language: Language, path: str = "") -> SyntaxTree | None:
    """Parse a file (or a fragment of one). None when the language has no grammar or the text is
    over :data:`MAX_SOURCE_BYTES`."""
    key = grammar_key(language, path)
    if key is None:
        return None
    data = text.encode("utf-8", "surrogateescape")
    if len(data) > MAX_SOURCE_BYTES:
        return None
    tree = _parser(key).parse(data)
    return SyntaxTree(language, tree, data, text, key)


@cache
def _parser(key: str) -> ts.Parser:
    return ts.Parser(_compiled(key).language)


def _definition_matches(
    compiled: _Compiled, root: ts.Node
) -> dict[tuple[int, int], tuple[str, str, ts.Node]]:
    found: dict[tuple[int, int], tuple[str, str, ts.Node]] = {}
    for _, caps in ts.QueryCursor(compiled.definitions).matches(root):
        for kind in ("function", "method", "class"):
            nodes = caps.get(kind)
            names = caps.get("name")
            if not nodes or not names:
                continue
            node = nodes[0]
            name = (names[0].text or b"").decode("utf-8", "replace")[:200]
            found.setdefault((node.start_byte, node.end_byte), (kind, name, node))
    return found


def _definitions(
    found: dict[tuple[int, int], tuple[str, str, ts.Node]],
) -> tuple[Definition, ...]:
    spans: list[tuple[int, int, str, str, int]] = []
    for kind, name, node in found.values():
        outer = node.parent if node.parent and node.parent.type == "decorated_definition" else node
        start = outer.start_point.row + 1
        end = node.end_point.row + 1
        spans.append((start, -end, kind, name, _header_end(node)))
    spans.sort()
    out: list[Definition] = []
    stack: list[int] = []
    for start, neg_end, kind, name, header_end in spans:
        end = -neg_end
        while stack and out[stack[-1]].end < start:
            stack.pop()
        parent = stack[-1] if stack else None
        in_class = parent is not None and out[parent].kind == "class"
        shown = "method" if kind == "function" and in_class else kind
        out.append(Definition(shown, name, start, end, max(start, min(header_end, end)), parent))
        stack.append(len(out) - 1)
    return tuple(out)


def _header_end(node: ts.Node) -> int:
    """The last line of a definition's signature: where the last token before its body ends
    (``def f(a,\n b):`` -> the line of ``:``; ``function f() {`` -> its own line)."""
    target = node
    if node.type in ("variable_declarator", "assignment_expression", "pair"):
        for field_name in ("value", "right"):
            inner = node.child_by_field_name(field_name)
            if inner is not None:
                target = inner
                break
    body = target.child_by_field_name("body")
    if body is None:
        return node.start_point.row + 1
    before = body.prev_sibling
    while before is not None and before.is_extra:  # a comment between signature and body
        before = before.prev_sibling
    if before is None or before.start_byte < target.start_byte:
        return body.start_point.row + 1
    return before.end_point.row + 1


def _calls(cursor: ts.QueryCursor, root: ts.Node, data: bytes) -> tuple[Call, ...]:
    out: list[Call] = []
    for _, caps in cursor.matches(root):
        callees = caps.get("callee")
        calls = caps.get("call")
        if not callees or not calls:
            continue
        callee, call = callees[0], calls[0]
        # The callee as written, receiver included (``Pattern.compile``, ``$db->query``): from
        # the call's start to the end of the callee's name, without ``new``.
        raw = data[call.start_byte : min(callee.end_byte, call.start_byte + 120)]
        text = " ".join(raw.decode("utf-8", "replace").split())
        text = text.removeprefix("new ").lstrip()
        out.append(
            Call(
                callee.start_point.row + 1,
                (callee.text or b"").decode("utf-8", "replace"),
                text,
                call.end_point.row + 1,
            )
        )
    out.sort(key=lambda c: c.line)
    return tuple(out)


_NAME_TYPES = frozenset(
    {"name", "constant", "word", "instance_variable", "class_variable", "global_variable"}
)
# Node types across the grammars, by what they do to control flow (tree-sitter names them after
# the language's keywords: if_statement, elif_clause, if_expression, unless, rescue, ...).
_BRANCH = frozenset(
    {
        "if",
        "elif",
        "else",
        "unless",
        "switch",
        "case",
        "when",
        "match",
        "select",
        "conditional",
        "ternary",
        "boolean",
        "guard",
        "elsif",
        "then",
    }
)
_LOOP = frozenset({"for", "while", "until", "do", "foreach", "loop"})
_HANDLER = frozenset({"try", "except", "catch", "finally", "rescue", "ensure", "defer", "with"})
_EXIT = frozenset({"return", "raise", "throw", "break", "continue", "goto", "yield", "exit"})
# Nodes that bind names (besides every *assignment* and *declarator* node type).
_BINDERS = frozenset(
    {
        "for_statement",
        "for_in_statement",
        "for_in_clause",
        "short_var_declaration",
        "let_declaration",
        "range_clause",
        "foreach_statement",
        "catch_clause",
        "with_item",
        "variable_declaration",
        "local_variable_declaration",
        "const_declaration",
        "var_spec",
    }
)
_PARAMETER_LISTS = frozenset(
    {
        "parameters",
        "formal_parameters",
        "parameter_list",
        "method_parameters",
        "lambda_parameters",
        "block_parameters",
    }
)
_EXIT_CALLS = frozenset({b"raise", b"fail", b"abort", b"exit", b"return", b"die"})
_EXIT_CALL_NODES = frozenset({"identifier", "word"})
_LOGICAL = frozenset({"&&", "||", "??", "and", "or", "not", "!"})


_WORD = re.compile(r"[A-Za-z_$][\w$]*")
_REGEX_LITERALS = frozenset({"regex"})  # JavaScript's /.../ (other grammars name theirs alike)


def _squashed(node: ts.Node) -> str:
    # quote style is no data: 'x' and "x" bind the same value
    return "".join((node.text or b"")[:400].decode("utf-8", "replace").split()).replace("'", '"')


def _leaf_names(node: ts.Node) -> list[str]:
    out = []
    stack = [node]
    while stack:
        t = stack.pop()
        if t.child_count == 0 and _is_name(t.type):
            out.append((t.text or b"").decode("utf-8", "replace"))
        stack.extend(t.children)
    return out


def _is_name(node_type: str) -> bool:
    return node_type.endswith("identifier") or node_type in _NAME_TYPES


def _flow_kind(node: ts.Node) -> str | None:
    if not node.is_named:
        return None
    head = node.type.split("_", 1)[0]
    if head in _EXIT:
        return "exit"
    if head in _BRANCH:
        return "branch"
    if head in _LOOP:
        return "loop"
    if head in _HANDLER and node.type != "with_item":
        return "handler"
    if node.type in ("binary_expression", "boolean_operator", "not_operator", "unary_expression"):
        op = node.child_by_field_name("operator")
        if op is not None and op.type in _LOGICAL:
            return "branch"
        if node.type in ("boolean_operator", "not_operator"):
            return "branch"
    return None


def _has_exit(node: ts.Node, budget: int = 400) -> bool:
    """Whether a branch's lines hold a return, raise, throw, break or continue (a guard)."""
    stack = list(node.children)
    while stack and budget > 0:
        budget -= 1
        n = stack.pop()
        if n.is_named and n.type.split("_", 1)[0] in _EXIT - {"yield"}:
            return True
        if n.child_count == 0 and n.text in _EXIT_CALLS and n.type in _EXIT_CALL_NODES:
            return True  # exits that are calls or commands: Ruby's raise, the shell's return
        if n.type in ("function_definition", "function_declaration", "arrow_function", "lambda"):
            continue
        stack.extend(n.children)
    return False


@dataclass(frozen=True, slots=True)
class Located:
    """A tree and how its line numbers map to the file's: ``file line = tree line + offset``.

    ``whole`` is True for the file's full text, False for a hunk fragment (one side of a hunk
    parsed alone, when the file's content is not available)."""

    tree: SyntaxTree
    offset: int
    whole: bool

    def enclosing(self, file_line: int) -> tuple[Definition, ...]:
        return self.tree.enclosing(file_line - self.offset)

    def innermost_function(self, file_line: int) -> Definition | None:
        return self.tree.innermost_function(file_line - self.offset)

    def is_code_line(self, file_line: int) -> bool:
        return self.tree.is_code_line(file_line - self.offset)


class CodeIndex:
    """The PR's code, parsed once on first use and shared by the classifier and the packer.

    Full files come from the :class:`~depthgate.core.source.Sources` the surface found; without
    them, a hunk's side is parsed as a fragment (tree-sitter recovers from the missing rest).
    Line numbers in and out are the file's own.
    """

    def __init__(self, sources: Sources = DIFF_ONLY) -> None:
        self.sources = sources
        self._files: dict[tuple[str, str], SyntaxTree | None] = {}
        self._fragments: dict[tuple[int, str], SyntaxTree | None] = {}

    def file(self, path: str, side: Side, language: Language) -> SyntaxTree | None:
        """The whole file on ``side`` ("old" or "new"), when its text is available."""
        key = (path, side)
        if key not in self._files:
            src = self.sources.get(path)
            text = None if src is None else src.new_text if side == "new" else src.old_text
            self._files[key] = None if text is None else parse_source(text, language, path)
        return self._files[key]

    def locate(self, hunk: Hunk, side: Side, language: Language) -> Located | None:
        """The best tree for a hunk's side: the whole file, else the hunk's own lines."""
        whole = self.file(hunk.path, side, language)
        if whole is not None:
            return Located(whole, 0, True)
        key = (id(hunk), side)
        if key not in self._fragments:
            kept = LineKind.ADDED if side == "new" else LineKind.DELETED
            text = "\n".join(ln.text for ln in hunk.lines if ln.kind in (kept, LineKind.CONTEXT))
            self._fragments[key] = parse_source(text + "\n", language, hunk.path)
        tree = self._fragments[key]
        if tree is None:
            return None
        start = hunk.new_start if side == "new" else hunk.old_start
        return Located(tree, start - 1, False)


def header_end(node: ts.Node) -> int:
    """The 1-based last line of a definition node's signature (see :func:`_header_end`)."""
    return _header_end(node)
