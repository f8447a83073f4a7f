"""The code around a hunk that each tier is shown (design §9), from the PR's parsed files.

* fast  -- the hunk, plus its enclosing definition's signature;
* logic -- the whole enclosing definition (new side; old side for a deletion-only hunk), the
  module's imports, and for a method its class's header and constructor;
* deep  -- the same, plus the definitions in the PR's files that the hunk calls or that call the
  changed definition (the packer then adds the rest of the PR diff).

A definition longer than ``limits.max_definition_lines`` is cut to its signature plus a window
around the hunk, and says so. Context is shown as ``C<n>  text`` lines, apart from the diff's
``R``/``L`` lines: a finding can only point at the diff (placement never sees these lines).
Without the file's source (diff only) the hunk's own fragment is parsed: that names the
enclosing definition when its signature is inside the hunk, and adds no lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from depthgate.core.diff import Hunk, LineKind
from depthgate.core.languages import Language, detect
from depthgate.core.prompting import estimate
from depthgate.core.source import Side
from depthgate.core.syntax import CodeIndex, Definition, SyntaxTree

TOKENS_PER_LINE = 4  # the "C123  " prefix and the newline, as for diff lines
MAX_EXTRA_FILES = 32  # other PR files parsed per plan to find callees and callers
MAX_NAMES = 16  # callee names looked up per hunk
MAX_RELATED = 6  # callees and callers per hunk: the nearest few, not the whole call graph
CONSTRUCTORS = frozenset({"__init__", "constructor", "initialize", "new", "__construct"})


@dataclass(frozen=True, slots=True)
class Site:
    """Where a hunk sits: its file's language and the real enclosing definition (tree-sitter's,
    not git's ``@@`` section text), and whether the whole file was available."""

    language: Language
    side: Side
    definition: str | None  # "method Cache.get (lines 10-48)"
    whole_file: bool
    parsed: bool = True  # False: no grammar for the language, so nothing is known of its code

    def describe(self) -> str:
        if not self.parsed:
            return self.language.value
        if self.definition:
            return f"{self.language.value}, in {self.definition}"
        where = "at the top level" if self.whole_file else "enclosing definition not shown"
        return f"{self.language.value}, {where}"


@dataclass(frozen=True, slots=True)
class ContextBlock:
    """Lines of one file shown for understanding only. ``lines`` are (file line, text)."""

    path: str
    side: Side
    kind: str  # signature | definition | class | constructor | imports | callee | caller
    label: str
    lines: tuple[tuple[int, str], ...]
    cut: str | None = None  # what was left out, when the definition was cut

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.side, self.label)

    @property
    def tokens(self) -> int:
        return sum(_line_tokens(text) for _, text in self.lines) + estimate(self.label) + 8


def _line_tokens(text: str) -> int:
    return estimate(text) + TOKENS_PER_LINE


def hunk_side(hunk: Hunk) -> Side:
    """The side a hunk's context comes from: new, except for a hunk that only deletes."""
    return "old" if hunk.added == 0 and hunk.deleted > 0 else "new"


def changed_lines(hunk: Hunk, side: Side) -> list[int]:
    kind = LineKind.DELETED if side == "old" else LineKind.ADDED
    numbers = [ln.old_no if side == "old" else ln.new_no for ln in hunk.lines if ln.kind is kind]
    found = [n for n in numbers if n is not None]
    if found:
        return found
    # a deletion on the new side: the lines around the gap
    start = hunk.old_start if side == "old" else hunk.new_start
    return [max(start, 1)]


class ContextBuilder:
    """Builds each hunk's context from one :class:`CodeIndex` (the plan's), caching per hunk."""

    def __init__(
        self,
        index: CodeIndex,
        paths: Sequence[str],
        *,
        max_definition_lines: int,
        own: Iterable[str] = (),
    ):
        """``paths``: the PR's files, in diff order; ``own``: those with hunks under review."""
        self.index = index
        self.own = frozenset(own)
        self._extra: set[str] = set()
        # files with hunks under review first: they are parsed for their hunks anyway
        self.paths = tuple(sorted(dict.fromkeys(paths), key=lambda p: p not in self.own))
        self.max_lines = max_definition_lines
        self._sites: dict[int, Site] = {}
        self._located: dict[tuple[int, Side], tuple[SyntaxTree | None, int, bool]] = {}
        self._blocks: dict[tuple[str, int], tuple[ContextBlock, ...]] = {}
        self._callers: dict[str, list[tuple[str, SyntaxTree, Definition]]] = {}
        self._definitions: dict[str, list[tuple[str, SyntaxTree, Definition]]] = {}

    # -- where a hunk is --------------------------------------------------------------------

    def _tree(self, hunk: Hunk, side: Side) -> tuple[SyntaxTree | None, int, bool]:
        key = (id(hunk), side)
        if key not in self._located:
            located = self.index.locate(hunk, side, detect(hunk.path))
            self._located[key] = (
                (None, 0, False)
                if located is None
                else (located.tree, located.offset, located.whole)
            )
        return self._located[key]

    def _enclosing(self, hunk: Hunk, side: Side) -> tuple[SyntaxTree | None, Definition | None]:
        tree, offset, whole = self._tree(hunk, side)
        if tree is None:
            return None, None
        changed = [n - offset for n in changed_lines(hunk, side)]
        first, last = min(changed), max(changed)
        inner = tree.enclosing(first)
        # the innermost definition that holds every changed line, else the first line's
        for d in inner:
            if d.start <= first and last <= d.end:
                return (tree if whole else None), _shift(d, offset)
        return (tree if whole else None), (_shift(inner[0], offset) if inner else None)

    def site(self, hunk: Hunk) -> Site:
        if id(hunk) not in self._sites:
            side = hunk_side(hunk)
            tree, d = self._enclosing(hunk, side)
            whole = tree is not None
            parsed = self._tree(hunk, side)[0] is not None
            label = None
            if d is not None:
                label = f"{d.kind} {self._qualified(hunk, side, d)} (lines {d.start}-{d.end})"
                if not whole:
                    label = f"{d.kind} {d.name} (from the hunk alone)"
            self._sites[id(hunk)] = Site(detect(hunk.path), side, label, whole, parsed)
        return self._sites[id(hunk)]

    def _qualified(self, hunk: Hunk, side: Side, d: Definition) -> str:
        tree, _, whole = self._tree(hunk, side)
        if tree is None or not whole:
            return d.name
        names = [d.name]
        parent = d.parent
        while parent is not None:
            names.append(tree.definitions[parent].name)
            parent = tree.definitions[parent].parent
        return ".".join(reversed(names))

    # -- what a tier is shown -----------------------------------------------------------------

    def blocks(self, tier: str, hunk: Hunk) -> tuple[ContextBlock, ...]:
        """The structural context of one hunk for ``tier``, most important first."""
        key = (tier, id(hunk))
        if key not in self._blocks:
            self._blocks[key] = tuple(self._build(tier, hunk))
        return self._blocks[key]

    def _build(self, tier: str, hunk: Hunk) -> list[ContextBlock]:
        side = hunk_side(hunk)
        tree, d = self._enclosing(hunk, side)
        if tree is None:
            return []
        path = hunk.path
        at = _At(tree, path, side)
        name = self._qualified(hunk, side, d) if d is not None else ""
        changed = changed_lines(hunk, side)
        out: list[ContextBlock] = []
        if tier == "fast":
            if d is not None:
                out.append(
                    self._span(
                        at,
                        "signature",
                        f"signature of {d.kind} {name}",
                        (d.start, d.header_end),
                    )
                )
                out.extend(self._outer(at, tree, d))
            return out
        if d is not None:
            out.append(self._definition(at, "definition", f"enclosing {d.kind} {name}", d, changed))
            if d.kind != "method":  # a method's class header comes next
                out.extend(self._outer(at, tree, d))
            cls = tree.definitions[d.parent] if d.parent is not None else None
            if d.kind == "method" and cls is not None and cls.kind == "class":
                out.append(
                    self._span(
                        at,
                        "class",
                        f"class {cls.name} header",
                        (cls.start, cls.header_end),
                    )
                )
                ctor = self._constructor(tree, d.parent, cls)
                if ctor is not None and ctor != d:
                    out.append(
                        self._definition(
                            at,
                            "constructor",
                            f"constructor {cls.name}.{ctor.name}",
                            ctor,
                            (),
                        )
                    )
        if tree.imports:
            lines = [n for a, b in tree.imports for n in range(a, b + 1)]
            out.append(self._lines(at, "imports", "module imports", lines))
        if tier == "deep":
            out.extend(self._related(hunk, tree, side, d, changed))
        return [b for b in out if b.lines]

    def _outer(self, at: _At, tree: SyntaxTree, d: Definition) -> list[ContextBlock]:
        """The signatures of the definitions around a nested one (a closure's function, a
        function's module-level factory): where its free names come from."""
        out = []
        parent = d.parent
        while parent is not None:
            p = tree.definitions[parent]
            out.append(
                self._span(at, "outer", f"inside {p.kind} {p.name}", (p.start, p.header_end))
            )
            parent = p.parent
        return out

    def _constructor(
        self, tree: SyntaxTree, parent: int | None, cls: Definition
    ) -> Definition | None:
        for d in tree.definitions:
            if d.parent == parent and (d.name in CONSTRUCTORS or d.name == cls.name):
                return d
        return None

    def _related(
        self, hunk: Hunk, tree: SyntaxTree, side: Side, d: Definition | None, changed: list[int]
    ) -> list[ContextBlock]:
        """Definitions in the PR's files the hunk calls (callees), and those that call the
        changed definition (callers): by name, the nearest few."""
        lo, hi = (d.start, d.end) if d is not None else (min(changed), max(changed))
        out: list[ContextBlock] = []
        seen: set[tuple[str, int]] = {(hunk.path, lo)}
        # the hunk's own calls first, then the rest of the enclosing definition's
        names = dict.fromkeys(c.name for c in tree.calls_in(min(changed), max(changed)))
        if d is not None:
            names.update(dict.fromkeys(c.name for c in tree.calls_in(lo, hi)))
        names = dict.fromkeys(list(names)[:MAX_NAMES])
        for callee in names:
            for path, other, found in self._defined(callee):
                if len(out) >= MAX_RELATED:
                    break
                if (path, found.start) in seen:
                    continue
                seen.add((path, found.start))
                out.append(
                    self._definition(
                        _At(other, path, "new"),
                        "callee",
                        f"called: {found.kind} {found.name} in {path}",
                        found,
                        (),
                    )
                )
        if d is not None:
            callers = 0
            for path, other, caller in self._callers_of(d.name):
                if callers >= MAX_RELATED // 2 or (path, caller.start) in seen:
                    continue
                seen.add((path, caller.start))
                callers += 1
                out.append(
                    self._definition(
                        _At(other, path, "new"),
                        "caller",
                        f"calls {d.name}: {caller.kind} {caller.name} in {path}",
                        caller,
                        (),
                    )
                )
        return out

    def _files_naming(self, name: str) -> Iterable[tuple[str, SyntaxTree]]:
        """The PR's files (new side) whose text holds ``name`` at all (a substring test). Files
        with hunks under review are parsed anyway; of the others at most
        :data:`MAX_EXTRA_FILES` are parsed per plan, so a common name in a 500-file PR does not
        parse all of it (the files nearest the hunks, in the diff's order, come first)."""
        for path in self.paths:
            src = self.index.sources.get(path)
            if src is None or src.new_text is None or name not in src.new_text:
                continue
            if path not in self.own and path not in self._extra:
                if len(self._extra) >= MAX_EXTRA_FILES:
                    continue
                self._extra.add(path)
            tree = self.index.file(path, "new", detect(path))
            if tree is not None:
                yield path, tree

    def _defined(self, name: str) -> list[tuple[str, SyntaxTree, Definition]]:
        if name not in self._definitions:
            self._definitions[name] = [
                (path, tree, d)
                for path, tree in self._files_naming(name)
                for d in tree.definitions_named(name)
                if d.kind != "class"
            ]
        return self._definitions[name]

    def _callers_of(self, name: str) -> list[tuple[str, SyntaxTree, Definition]]:
        if name not in self._callers:
            found: list[tuple[str, SyntaxTree, Definition]] = []
            for path, tree in self._files_naming(name):
                for call in tree.calls_in(1, tree.line_count):
                    if call.name != name:
                        continue
                    inner = tree.innermost(call.line)
                    if inner is not None and inner.kind != "class":
                        entry = (path, tree, inner)
                        if entry not in found:
                            found.append(entry)
            self._callers[name] = found
        return self._callers[name]

    # -- lines ---------------------------------------------------------------------------------

    def _definition(
        self, at: _At, kind: str, label: str, d: Definition, around: Sequence[int] = ()
    ) -> ContextBlock:
        full = f"{label} (lines {d.start}-{d.end})"
        if d.length <= self.max_lines:
            return self._span(at, kind, full, (d.start, d.end))
        head = list(range(d.start, d.header_end + 1))
        room = max(self.max_lines - len(head), 0)
        if around:
            lo, hi = max(min(around), d.header_end + 1), min(max(around), d.end)
        else:
            lo = hi = d.header_end + 1
        spare = max(room - (hi - lo + 1), 0)
        lo = max(d.header_end + 1, lo - spare // 2)
        hi = min(d.end, lo + room - 1)
        lo = max(d.header_end + 1, hi - room + 1)  # near the end: the window grows upwards
        window = list(range(lo, hi + 1))
        cut = (
            f"{d.length}-line definition cut to its signature and lines {lo}-{hi}"
            if window
            else f"{d.length}-line definition cut to its signature"
        )
        block = self._lines(at, kind, full, head + window)
        return ContextBlock(block.path, at.side, kind, full, block.lines, cut)

    def _span(self, at: _At, kind: str, label: str, span: tuple[int, int]) -> ContextBlock:
        return self._lines(at, kind, label, range(span[0], span[1] + 1))

    def _lines(self, at: _At, kind: str, label: str, lines: Iterable[int]) -> ContextBlock:
        tree = at.tree
        shown = tuple((n, tree.line_text(n)) for n in sorted(set(lines)) if n <= tree.line_count)
        return ContextBlock(at.path, at.side, kind, label, shown)


@dataclass(frozen=True, slots=True)
class _At:
    """Which file's lines a block shows."""

    tree: SyntaxTree
    path: str
    side: Side


def _shift(d: Definition, offset: int) -> Definition:
    if offset == 0:
        return d
    return Definition(
        d.kind, d.name, d.start + offset, d.end + offset, d.header_end + offset, d.parent
    )


def render_blocks(blocks: Sequence[ContextBlock], hunks: Sequence[Hunk]) -> str:
    """The blocks as the model sees them: ``C<n>  text``, each line once per task, lines the
    task's hunks already show left out except in the enclosing definition (``...`` marks a
    gap)."""
    shown: set[tuple[str, str, int]] = set()
    for h in hunks:
        for ln in h.lines:
            if ln.new_no is not None and ln.kind is not LineKind.DELETED:
                shown.add((h.path, "new", ln.new_no))
            if ln.old_no is not None and ln.kind is not LineKind.ADDED:
                shown.add((h.path, "old", ln.old_no))
    out: list[str] = []
    for b in blocks:
        body: list[str] = []
        last = None
        # the enclosing definition is shown whole and in order, the hunk's own lines included:
        # read top to bottom, it is the function as it stands after (or before) the change
        whole = b.kind == "definition"
        for n, text in b.lines:
            if (b.path, b.side, n) in shown and not whole:
                last = None if last is None else -1
                continue
            if last is not None and n != last + 1:
                body.append("   ...")
            body.append(f"C{n}  {text}")
            shown.add((b.path, b.side, n))
            last = n
        if not body:
            continue
        side = " (old side)" if b.side == "old" else ""
        cut = f" [cut: {b.cut}]" if b.cut else ""
        out.append(f"--- {b.path}{side}: {b.label}{cut}\n" + "\n".join(body) + "\n")
    return "".join(out)
