"""Definitions and their signatures, read from the syntax tree (issue #11, design §9).

What a caller of a definition depends on: its name, its parameters (names, order, defaults,
variadics, keyword-only markers, and in statically typed languages their types) and its return
type. :func:`signatures` reads them from a :class:`~depthgate.core.syntax.SyntaxTree` -- the whole
file where the source is known, else a hunk's side parsed as a fragment -- and
:func:`signature_change` says what changed between two versions of a function for its callers.
Module-level constants (Python's ``UPPER_CASE = ...``, JavaScript's top-level ``const``, Go's
``const`` / ``var``) are definitions too: removing one breaks its users.

No regular expression reads code here: parameters are the grammar's nodes, comments are the
grammar's comments. Pure: trees in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import tree_sitter as ts

from depthgate.core.languages import Language
from depthgate.core.syntax import SyntaxTree, header_end

# Languages whose parameter and return types are part of the calling contract: a type changed
# is a signature changed. Elsewhere annotations are hints (Python, TypeScript, PHP) or absent.
TYPED = frozenset({Language.GO, Language.JAVA, Language.RUST, Language.CSHARP})
# Languages whose return annotations are hints compared by their outer types.
_HINTED_RETURNS = frozenset({Language.PYTHON, Language.TYPESCRIPT, Language.PHP})
_PY_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]{2,}")  # Python's naming convention for constants

_VAR_POSITIONAL = frozenset(
    {
        "list_splat_pattern",
        "rest_pattern",
        "splat_parameter",
        "variadic_parameter",
        "variadic_parameter_declaration",
        "spread_parameter",
        "params_array",
    }
)
_VAR_KEYWORD = frozenset({"dictionary_splat_pattern", "hash_splat_parameter"})
_SKIPPED = frozenset({"positional_separator", "block_parameter", "(", ")", ",", "comment"})
_NAME_FIELDS = ("name", "pattern", "left")
_DEFAULT_FIELDS = ("value", "default_value", "right", "default")
_RETURN_FIELDS = ("return_type", "result", "returns")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: str | None  # the default's text, squashed; "?" for an optional one; None: required
    kind: str  # positional | keyword (after a bare ``*``) | var_positional | var_keyword
    type: str = ""  # the annotation's text, squashed ("" without one)


@dataclass(frozen=True, slots=True)
class Signature:
    """One definition as its callers see it. Lines are the tree's own (1-based)."""

    kind: str  # function | class | constant
    name: str
    line: int  # the line of the definition's first token (after decorators)
    header_end: int  # the last line of its signature
    params: tuple[Param, ...] | None  # None: no parameter list, or one the parser could not read
    returns: str  # the return type as written, squashed ("" without one)
    public: bool
    text: str  # the signature's code, squashed (what is compared when params is None)
    parent: str = ""  # the enclosing class's name, "" at the top level

    typed: bool = False  # parameter types are part of the signature (see TYPED)

    @property
    def key(self) -> str:
        """What identifies this version of the definition across files (a move, not a change):
        its parameters as callers see them (annotations only where they are contract), else
        its code."""
        if self.params is None:
            return f"{self.kind}:{self.name}:{self.text}"
        params = ",".join(
            f"{p.kind}:{p.name}={p.default}" + (f":{p.type}" if self.typed else "")
            for p in self.params
        )
        return f"{self.kind}:{self.name}({params})"


def signatures(tree: SyntaxTree, lines: frozenset[int] | None = None) -> tuple[Signature, ...]:
    """Every definition of the tree with its signature, in source order; with ``lines``, only
    those whose signature (or constant's statement) holds one of these tree lines."""
    out: list[Signature] = []
    classes: list[tuple[int, int, str]] = []  # (start byte, end byte, name)
    functions: list[tuple[int, int]] = []
    for kind, name, node in tree.definition_nodes:
        if kind == "class":
            classes.append((node.start_byte, node.end_byte, name))
    for kind, name, node in tree.definition_nodes:
        parent = next(
            (c for a, b, c in reversed(classes) if a < node.start_byte and node.end_byte <= b), ""
        )
        nested = any(a < node.start_byte and node.end_byte <= b for a, b in functions)
        if kind == "class":
            if lines is None or _holds(node, lines):
                out.append(_signature("class", name, node, tree, parent, nested, None, ""))
            continue
        functions.append((node.start_byte, node.end_byte))
        if lines is not None and not _holds(node, lines):
            continue
        plist = _parameter_list(node)
        params = None if plist is None or plist.has_error else _params(plist, tree)
        out.append(_signature("function", name, node, tree, parent, nested, params, _returns(node)))
    out.extend(_constants(tree, lines))
    out.sort(key=lambda s: s.line)
    return tuple(out)


def constants_at(tree: SyntaxTree, line: int) -> tuple[Signature, ...]:
    """The module-level constants the top-level statement holding ``line`` defines."""
    return tuple(_constants(tree, frozenset({line})))


def _holds(node: ts.Node, lines: frozenset[int]) -> bool:
    """Whether the definition's signature holds one of ``lines``."""
    first = node.start_point.row + 1
    last = max(first, min(header_end(node), node.end_point.row + 1))
    return any(first <= n <= last for n in lines)


def bound_names(tree: SyntaxTree) -> frozenset[str]:
    """The names a file (or fragment) defines at all: its definitions, its module-level
    assignments and its imports -- a definition removed but bound again this way
    (``TimeoutError = asyncio.TimeoutError``, ``from .x import f``) is still there for its users."""
    names = {s.name for s in signatures(tree)}
    root = tree.root
    for node in root.children:
        for n in (node, *node.children):
            target = _assigned_name(n)
            if target:
                names.add(target)
    for first, last in tree.imports:
        for line in range(first, last + 1):
            names |= tree.identifiers(line)
    return frozenset(names)


def signature_change(old: Signature, new: Signature, language: Language) -> str | None:
    """What changed between two versions of a function for its callers: a parameter removed or
    moved, a required parameter added, a default changed or dropped, a parameter's type (in a
    statically typed language) or the return type changed. None for what callers cannot notice:
    an optional parameter added, annotations added or changed where they are hints, a return
    annotation refined (``dict`` -> ``dict[str, Any]``, ``Optional[A]`` -> ``A``), whitespace and
    comments. Without readable parameters on either side, any change of the signature's code
    counts."""
    if old.params is None or new.params is None:
        return None if old.text == new.text else "signature changed"
    old_pos, old_all = _split(old.params)
    new_pos, new_all = _split(new.params)
    gone = [n for n in old_all if n not in new_all]
    if gone:
        return f"parameter {gone[0]!r} removed"
    if _reordered(old_pos, new_pos, old_all):
        return "parameters reordered"
    for name, p in old_all.items():
        q = new_all[name]
        if p.default != q.default:
            if q.default is None:
                return f"parameter {name!r} made required"
            if p.default is not None:
                return f"default of {name!r} changed"
        if language in TYPED and p.type != q.type:
            return f"type of parameter {name!r} changed"
        if p.kind != q.kind and "var" in p.kind + q.kind:
            return f"parameter {name!r} changed kind"
    for name, q in new_all.items():
        if name not in old_all and q.default is None and not q.kind.startswith("var"):
            return f"required parameter {name!r} added"
    if old.returns != new.returns and old.returns and new.returns:
        if language in _HINTED_RETURNS:
            a, b = _return_types(old.returns), _return_types(new.returns)
            if a.isdisjoint(b) and not (a | b) & _ANY_TYPE:
                return f"return type {old.returns!r} -> {new.returns!r}"
        elif language in TYPED:
            return f"return type {old.returns!r} -> {new.returns!r}"
    return None


# --------------------------------------------------------------------------------------------


def _text(node: ts.Node | None) -> str:
    return "" if node is None else (node.text or b"").decode("utf-8", "replace")


def _squash(text: str) -> str:
    return "".join(text.split())


def _field(node: ts.Node, names: Iterable[str]) -> ts.Node | None:
    for name in names:
        found = node.child_by_field_name(name)
        if found is not None:
            return found
    return None


def _function_node(node: ts.Node) -> ts.Node:
    """The function itself: the value of ``const f = () => ...``, ``a.f = function``, ``f: ...``."""
    if node.type in ("variable_declarator", "assignment_expression", "pair"):
        inner = _field(node, ("value", "right"))
        if inner is not None:
            return inner
    return node


def _parameter_list(node: ts.Node) -> ts.Node | None:
    fn = _function_node(node)
    found = fn.child_by_field_name("parameters")
    if found is None:
        found = fn.child_by_field_name("parameter")  # an arrow function's single parameter
    return found


def _returns(node: ts.Node) -> str:
    fn = _function_node(node)
    found = _field(fn, _RETURN_FIELDS)
    if found is None and fn.type == "method_declaration":  # Java, C#: the type before the name
        found = fn.child_by_field_name("type")
    text = _squash(_text(found))
    return text.removeprefix(":").removeprefix("->")


def _name_of(node: ts.Node) -> list[str]:
    """The names a parameter node binds (Go's ``a, b int`` binds two)."""
    names = [_text(c) for c in node.children_by_field_name("name")]
    if names:
        return names
    found = _field(node, _NAME_FIELDS[1:])
    if found is not None:
        node = found
    if node.child_count == 0:
        return [_text(node)]
    stack = [node]
    while stack:
        n = stack.pop(0)
        if n.child_count == 0 and (n.type.endswith("identifier") or n.type in ("name", "self")):
            return [_text(n)]
        if n.type == "variable_name":
            return [_text(n)]
        stack.extend(n.children)
    return [_squash(_text(node))]


def _params(plist: ts.Node, tree: SyntaxTree) -> tuple[Param, ...]:
    out: list[Param] = []
    keyword = False
    if plist.type not in ("parameters", "formal_parameters", "parameter_list", "method_parameters"):
        # a bare arrow-function parameter: ``x => ...``
        return (Param(_text(plist), None, "positional"),)
    for child in plist.named_children:
        t = child.type
        if t in _SKIPPED or t in tree.comment_types:
            continue
        if t == "keyword_separator":
            keyword = True
            continue
        inner = child.named_children[0] if child.named_children else child
        kind = "keyword" if keyword else "positional"
        if t in _VAR_POSITIONAL or inner.type in _VAR_POSITIONAL:
            kind = "var_positional"
            keyword = True
        elif t in _VAR_KEYWORD or inner.type in _VAR_KEYWORD:
            kind = "var_keyword"
        if t == "keyword_parameter":  # Ruby's ``d:`` / ``e: 2``
            kind = "keyword"
        default_node = _field(child, _DEFAULT_FIELDS)
        if default_node is None:  # C#'s ``int b = 1``: the value after an unnamed ``=``
            after = [c.is_named for c in child.children]
            eq = next((i for i, c in enumerate(child.children) if c.type == "="), None)
            if eq is not None and any(after[eq + 1 :]):
                default_node = next(c for c in child.children[eq + 1 :] if c.is_named)
        default: str | None = _squash(_text(default_node)) if default_node is not None else None
        if t == "optional_parameter" and default is None:
            default = "?"
        type_ = _squash(_text(child.child_by_field_name("type"))).removeprefix(":")
        for name in _name_of(child):
            out.append(Param(name.lstrip("*&$."), default, kind, type_))
    return tuple(out)


def _split(params: tuple[Param, ...]) -> tuple[list[str], dict[str, Param]]:
    """The names callers may pass by position (before the first variadic or keyword-only
    marker), and every parameter by name."""
    pos: list[str] = []
    for p in params:
        if p.kind != "positional":
            break
        pos.append(p.name)
    return pos, {p.name: p for p in params}


def _reordered(old_pos: list[str], new_pos: list[str], old_all: dict[str, Param]) -> bool:
    """Whether a caller passing arguments by position would now pass them to other
    parameters: the positional parameters kept are in another order, or a required one moved
    (an optional parameter inserted among optional ones moves only what is passed by name)."""
    kept_old = [n for n in old_pos if n in new_pos]
    kept_new = [n for n in new_pos if n in old_pos]
    if kept_old != kept_new:
        return True
    return any(
        old_all[n].default is None and n in new_pos and new_pos.index(n) != i
        for i, n in enumerate(old_pos)
    )


def _header_code(node: ts.Node, comments: frozenset[str]) -> str:
    """The definition's code up to its body (all of it without one), comments left out."""
    fn = _function_node(node)
    body = fn.child_by_field_name("body")
    end = body.start_byte if body is not None and body.start_byte > node.start_byte else None
    end = node.end_byte if end is None else end
    data = node.text or b""
    base = node.start_byte
    cut: list[tuple[int, int]] = []
    stack = list(node.children)
    while stack:
        n = stack.pop()
        if n.start_byte >= end:
            continue
        if n.type in comments:
            cut.append((n.start_byte - base, n.end_byte - base))
        elif n.end_byte <= end or n.start_byte < end:
            stack.extend(n.children)
    parts, at = [], 0
    for a, b in sorted(cut):
        parts.append(data[at:a])
        at = max(at, b)
    parts.append(data[at : end - base])
    return _squash(b"".join(parts).decode("utf-8", "replace"))[:2000]


def _signature(  # noqa: PLR0917 - one private constructor, called twice
    kind: str,
    name: str,
    node: ts.Node,
    tree: SyntaxTree,
    parent: str,
    nested: bool,
    params: tuple[Param, ...] | None,
    returns: str,
) -> Signature:
    line = node.start_point.row + 1
    end = max(line, min(header_end(node), node.end_point.row + 1))
    return Signature(
        kind,
        name,
        line,
        end,
        params,
        returns,
        _public(tree, node, name, parent, nested),
        _header_code(node, tree.comment_types),
        parent,
        tree.language in TYPED,
    )


def _public(tree: SyntaxTree, node: ts.Node, name: str, parent: str, nested: bool) -> bool:
    """Whether a definition is part of its module's public surface, by the language's rule."""
    lang = tree.language
    if nested:
        return False  # a function inside a function is nobody's API
    if lang is Language.PYTHON:
        return not name.startswith("_")
    if lang in (Language.JAVASCRIPT, Language.TYPESCRIPT):
        return _exported(node)
    if lang is Language.GO:
        return name[:1].isupper()
    if lang in (Language.JAVA, Language.CSHARP):
        return any(
            c.type in ("modifiers", "modifier") and "public" in _text(c).split()
            for c in node.children
        )
    if lang is Language.RUST:
        return any(c.type == "visibility_modifier" for c in node.children)
    if lang is Language.PHP:
        mods = [_text(c) for c in node.children if c.type == "visibility_modifier"]
        return not mods or "public" in mods
    return not name.startswith("_")  # Ruby, shell: public unless marked private by name


def _exported(node: ts.Node) -> bool:
    """An ``export`` declaration, or an assignment to ``module.exports`` / ``exports``."""
    n: ts.Node | None = node
    for _ in range(3):  # declarator -> lexical_declaration -> export_statement
        if n is None:
            break
        if n.type == "export_statement":
            return True
        n = n.parent
    if node.type == "assignment_expression":
        left = _text(node.child_by_field_name("left"))
        return left.startswith(("module.exports", "exports."))
    return False


def _assigned_name(node: ts.Node) -> str:
    """The plain name a module-level statement binds (``X = ...``, ``const X = ...``), or ""."""
    if node.type in ("assignment", "variable_declarator", "const_spec", "var_spec"):
        target = _field(node, ("left", "name"))
        if target is not None and target.type == "identifier":
            return _text(target)
    return ""


def _constants(tree: SyntaxTree, lines: frozenset[int] | None = None) -> list[Signature]:
    """Module-level constants: Python's ``UPPER_CASE = ...``, JavaScript's and TypeScript's
    top-level ``const`` / ``let`` / ``var`` with a value that is not a function, Go's ``const``
    and ``var``; with ``lines``, only in the statements that hold one of them."""
    lang = tree.language
    out: list[Signature] = []
    if lang not in (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT, Language.GO):
        return out
    if lines is None:
        tops: Iterable[ts.Node] = tree.root.children
    else:
        found = {}
        for line in lines:
            node = tree.top_level_node(line)
            if node is not None:
                found[node.start_byte] = node
        tops = [found[k] for k in sorted(found)]
    for top in tops:
        stack = [top]
        while stack:
            n = stack.pop()
            if n.type in ("export_statement", "expression_statement", "lexical_declaration"):
                stack.extend(n.named_children)
                continue
            if n.type in ("variable_declaration", "const_declaration", "var_declaration"):
                stack.extend(n.named_children)
                continue
            name = _assigned_name(n)
            if not name:
                continue
            value = _field(n, ("right", "value"))
            if lang is Language.PYTHON and not _PY_CONSTANT.fullmatch(name):
                continue
            if lang in (Language.JAVASCRIPT, Language.TYPESCRIPT) and (
                value is None or value.type in ("arrow_function", "function_expression", "class")
            ):
                continue
            line = n.start_point.row + 1
            public = (
                _exported(n)
                if lang in (Language.JAVASCRIPT, Language.TYPESCRIPT)
                else name[:1].isupper()
            )
            text = _squash(_text(n))[:2000]  # a constant's statement: its name and value
            out.append(Signature("constant", name, line, line, None, "", public, text))
    return out


# Return annotations that accept anything, or the class itself: no caller can tell a change.
_ANY_TYPE = frozenset({"Any", "object", "any", "mixed", "unknown", "Self", "self", "static"})
# typing's aliases of the builtin generics (PEP 585): ``Dict[str, Any]`` is ``dict[str, Any]``
_BUILTIN_ALIASES = {
    "Dict": "dict",
    "List": "list",
    "Tuple": "tuple",
    "Set": "set",
    "FrozenSet": "frozenset",
    "Type": "type",
    "DefaultDict": "defaultdict",
}


def _return_types(annotation: str) -> frozenset[str]:
    """The outer types a return annotation names: ``"PyJWK"`` and ``PyJWK``, ``dict`` and
    ``dict[str, Any]``, ``Union[A, B]``, ``Optional[A]``, ``A | B | None`` read alike."""
    text = _squash(annotation).replace('"', "").replace("'", "")
    members: list[str] = []
    todo = [text]
    while todo:
        item = todo.pop()
        for prefix in ("typing.", "t."):
            item = item.removeprefix(prefix)
        base, bracket, rest = item.partition("[")
        if base in ("Union", "Optional") and bracket:
            todo.extend(_top_level(rest[:-1], ","))
            if base == "Optional":
                members.append("None")
        elif len(parts := _top_level(item, "|")) > 1:
            todo.extend(parts)
        else:
            base = base.partition("<")[0]
            members.append(_BUILTIN_ALIASES.get(base, base))
    return frozenset(members)


def _top_level(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
