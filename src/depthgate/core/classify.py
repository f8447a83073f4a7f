"""Depth classification: every hunk gets one tier (fast, logic, deep) or a skip reason, plus the
reasons that decided it.

The rules come from the config's ``classify:`` section (defaults in
``data/classify-defaults.yaml``). Order of decision, per hunk:

1. the file is skipped (malformed, binary, submodule, lockfile, generated, vendored, minified,
   pure rename or copy, mode-only, empty, deleted) -> every hunk of it is skipped with that reason;
2. the hunk only changes whitespace (indentation counts in Python and YAML) -> skipped;
3. otherwise every rule is evaluated and the deepest tier any of them gives wins:
   deep  -- a path where any change is security-relevant (CI workflows, CODEOWNERS, policy
            files, keys and certificates, ``.env``; containers, IaC, migrations), a dangerous
            pattern in the changed lines, a dependency manifest, a security-domain signal
            (below), a symbol whose definition changed in one file and that is used in
            another changed file, a public signature whose parameters or return changed, a
            removed public definition, a symlink pointing out of the repository;
   logic -- changed control flow, or more changed lines of code than the threshold, or a large
            config change;
   fast  -- comments, docs, small config and small code changes.

Security-domain signals
-----------------------
Real security fixes rarely contain a dangerous call; they change *how* security-relevant code
behaves: a check added before a resource is used, a limit introduced, an allow or deny list
edited, a regular expression tightened, a header dropped on redirect. The classifier looks for
two things in a hunk:

* a **shape** of the change (``security_shapes``: regular expressions over the changed lines,
  like ``deep_patterns``) -- a guard that rejects input, a size or count limit, an allow/deny list,
  a changed regular expression, a scheme/host/path check, a header or cookie handled, a sensitive
  value dropped, escaping;
* a **role** of the code (``security_roles``) -- what the code is for (redirects, headers and
  cookies, authentication and sessions, TLS, keys and tokens, parsers of untrusted input, limits,
  paths and file serving, access control, sandboxing, escaping), told by the file's path, the
  hunk's function header, the file's imports and the identifiers in the hunk. Security paths of
  code (``auth/``, ``*session*``, ``*jwt*``, ``*crypto*``, ``*ssl*``) are roles: a rename or a
  log line in ``auth/login.py`` is ordinary, an ownership check added there is deep.

Both are needed: a shape alone is ordinary code (``raise ValueError`` in a CLI), a role alone is
the whole of an HTTP library. The reason names both: rule ``deep.security.<role>``, detail
``<shape>: <line>; role <role>: <evidence>``. Only hunks with a shape pay for the role search.

Every reason names its rule (``deep.pattern.shell_exec``) and what matched
(``+12: subprocess.run(cmd, shell=True)``). Deterministic and pure: same diff and config, same
answer.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import pathspec

from depthgate.core.depth import (
    HunkCode,
    Scope,
    SinkCatalogue,
    SinkFinder,
    enclosing_scopes,
    hunk_code,
    reaches,
    word_automaton,
)
from depthgate.core.diff import Diff, FileDiff, FileKind, FileStatus, Hunk, Line, LineKind
from depthgate.core.languages import Language, Syntax, detect, syntax
from depthgate.core.routes import ClassifyConfig, PatternRule, RoleRule, Tier
from depthgate.core.signatures import Signature, bound_names, signature_change, signatures
from depthgate.core.syntax import CodeIndex, Located, Side, grammar_key

SKIP = "skip"
_RANK = {Tier.FAST.value: 0, Tier.LOGIC.value: 1, Tier.DEEP.value: 2}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LEADING_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
# An import line in any language the classifier knows: the file's imports tell its role.
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import\b|import\b|package\b|"
    r"(?:const|let|var)[ \t]+[^=\n]+=[ \t]*require\()[^\n]*",
    re.MULTILINE,
)
# Names too common to link two files by: a change to one of these says nothing cross-file.
_COMMON_SYMBOLS = frozenset(
    """
    main init test setup teardown self this name value data args kwargs config options result
    error string number object index items type func callback handler params props state render
    update create delete get set run start stop close open read write
    """.split()  # noqa: SIM905 - a word list reads better as text
)


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str  # e.g. "deep.pattern.shell_exec", "skip.lockfile"
    tier: str  # fast | logic | deep | skip
    detail: str


@dataclass(frozen=True, slots=True)
class HunkDecision:
    hunk: Hunk
    language: Language
    tier: Tier | None  # None when skipped
    skip: str | None  # the skip reason, when skipped
    reasons: tuple[Reason, ...]
    enclosing: tuple[Scope, ...] = ()  # the code the change sits in, new side first

    @property
    def decided_by(self) -> Reason | None:
        """The first reason that gave the hunk its tier (or its skip)."""
        want = self.tier.value if self.tier is not None else SKIP
        return next((r for r in self.reasons if r.tier == want), None)


@dataclass(frozen=True, slots=True)
class FileSkip:
    path: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Classification:
    decisions: tuple[HunkDecision, ...]
    skipped_files: tuple[FileSkip, ...]  # every skipped file, with or without hunks

    @cached_property
    def skipped_paths(self) -> frozenset[str]:
        return frozenset(s.path for s in self.skipped_files)


def _scoped(pattern: str) -> str:
    """Turn a leading ``(?i)`` into ``(?i:...)`` so patterns can be joined with ``|``."""
    m = _LEADING_FLAGS.match(pattern)
    return f"(?{m.group(1)}:{pattern[m.end() :]})" if m else f"(?:{pattern})"


@dataclass(frozen=True)
class _PatternMatcher:
    name: str
    regex: re.Pattern[str]
    keywords: tuple[str, ...]
    languages: frozenset[Language]
    lines: str

    @classmethod
    def build(cls, name: str, rule: PatternRule) -> _PatternMatcher:
        joined = "|".join(_scoped(p) for p in rule.patterns)
        return cls(
            name,
            re.compile(joined, re.MULTILINE),
            tuple(rule.keywords),
            frozenset(rule.languages),
            rule.lines,
        )


@dataclass(frozen=True)
class _RoleMatcher:
    name: str
    regex: re.Pattern[str] | None
    keywords: tuple[str, ...]
    paths: _PathRule | None

    @classmethod
    def build(cls, name: str, rule: RoleRule) -> _RoleMatcher:
        joined = "|".join(_scoped(p) for p in rule.patterns)
        return cls(
            name,
            re.compile(joined, re.MULTILINE) if rule.patterns else None,
            tuple(rule.keywords),
            _PathRule(name, rule.paths) if rule.paths else None,
        )


class _PathRule:
    """A named list of gitignore-style globs (pathspec's semantics).

    The globs' regular expressions are joined into one, so a path is tested once per rule; a
    rule with negations (``!keep.js``) falls back to pathspec's own ordered matching.
    """

    def __init__(self, name: str, globs: Sequence[str]) -> None:
        self.name = name
        self.globs = list(globs)
        self.spec = pathspec.PathSpec.from_lines("gitignore", self.globs)
        regexes = [p.regex.pattern for p in self.spec.patterns if p.regex is not None]
        # (one regex per glob, to name the glob that matched, is only built on a match)
        simple = all(p.include for p in self.spec.patterns if p.regex is not None)
        self.union = (
            re.compile("|".join(f"(?:{r})" for r in regexes)) if simple and regexes else None
        )

    def match(self, path: str) -> str | None:
        """The glob that matched ``path``, or None."""
        if not self.globs:
            return None
        if self.union is not None:
            if not self.union.match(path):
                return None
        elif not self.spec.match_file(path):
            return None
        for glob in self.globs:  # only on a match: which glob it was, for the reason
            if pathspec.PathSpec.from_lines("gitignore", [glob]).match_file(path):
                return glob
        return self.globs[0]


@dataclass(frozen=True, slots=True)
class _Definition:
    """A definition whose signature a hunk touches on one side (see :meth:`_definitions`)."""

    sig: Signature
    path: str
    hunk: Hunk
    line: Line  # the changed line of its signature, quoted in reasons
    side: Side
    language: Language
    offset: int  # file line = tree line + offset

    @property
    def name(self) -> str:
        return self.sig.name

    @property
    def public(self) -> bool:
        return self.sig.public

    @property
    def kind(self) -> str:
        return self.sig.kind


# A condition line that opens a block (Python or C-family), and the body of a guard: what a
# changed condition guards when the body itself is unchanged context.
_GUARD_OPENS = re.compile(
    r"^[ \t]*(?:\}[ \t]*else[ \t]+)?(?:if|elif)\b[^\n]*(?::|\{)[ \t]*(#[^\n]*)?$"
)
_GUARD_OPENS_ANY = re.compile(_GUARD_OPENS.pattern, re.MULTILINE)
_GUARD_BODY = re.compile(
    r"^[ \t]*(?:raise|throw|abort|continue|return[ \t]+(?:None|False|null|nil|false|err))\b"
)
_EARLY_EXIT = re.compile(r"^[ \t]*(?:return|continue|break)\b", re.MULTILINE)
_CHECK_SHAPES = frozenset({"check_call", "guard", "rejects_input"})

# The shape of a signature change read from the tree (no expression matches it).
_DEFAULT_CHANGED = _PatternMatcher(
    "default_changed", re.compile(r"(?!)"), (), frozenset(), "changed"
)

# reStructuredText markup: a line of documentation (a docstring's), not of code
_PROSE = re.compile(r"``|^\s*(?::param\b|:returns?:|:raises?\b|\.\. )")


class Classifier:
    """Compiled rules of one ClassifyConfig. Build once, classify many diffs."""

    def __init__(self, config: ClassifyConfig) -> None:
        self.config = config
        self.skip_rules = [_PathRule(n, g) for n, g in config.skip_paths.items()]
        self.deep_path_rules = [_PathRule(n, g) for n, g in config.deep_paths.items()]
        self.manifests = _PathRule("manifest", config.manifests)
        self.patterns = [_PatternMatcher.build(n, r) for n, r in config.deep_patterns.items()]
        self.shapes = [_PatternMatcher.build(n, r) for n, r in config.security_shapes.items()]
        self.roles = [_RoleMatcher.build(n, r) for n, r in config.security_roles.items()]
        # one automaton for the changed-line rules (patterns and shapes): one pass finds both
        self.keywords = word_automaton(
            k for m in itertools.chain(self.patterns, self.shapes) for k in m.keywords
        )
        self.role_keywords = word_automaton(k for r in self.roles for k in r.keywords)
        self.markers = [m.lower() for m in config.generated_markers]
        self.sinks = SinkCatalogue(config.sinks)

    # ---------------------------------------------------------------------------------------

    def classify(self, diff: Diff, *, index: CodeIndex | None = None) -> Classification:
        """``index``: the PR's code (whole files where the surface found them); without it each
        hunk is read from its own lines, as a fragment."""
        index = index if index is not None else CodeIndex()
        finder = SinkFinder(self.sinks)
        decisions: list[HunkDecision] = []
        skipped: list[FileSkip] = []
        live: list[tuple[FileDiff, Language]] = []
        for f in diff.files:
            lang = detect(f.path)
            skip = self._file_skip(f, lang)
            if skip is not None:
                skipped.append(skip)
                reason = Reason(f"skip.{skip.reason}", SKIP, skip.detail)
                decisions.extend(
                    HunkDecision(h, lang, None, skip.reason, (reason,)) for h in f.hunks
                )
            else:
                live.append((f, lang))

        views = {id(h): _view(h) for f, _ in live for h in f.hunks}
        codes: dict[int, HunkCode | None] = {}
        for f, lang in live:
            if syntax(lang).is_code and not syntax(lang).is_docs:
                for h in f.hunks:
                    codes[id(h)] = hunk_code(h, lang, index)
        # What the rules read: the changed lines that hold code, where the parser can tell (a
        # docstring that mentions eval() is no call of it).
        code_views = {k: _code_view(codes.get(k), v) for k, v in views.items()}
        defs = _FileDefinitions(index, live)
        changes = self._changes(self._definitions(live, defs), defs)
        cross = self._cross_file(live, code_views, changes) if self.config.cross_file else {}
        signatures = self._signature_changes(changes)
        # a parameter's default changed (or dropped), in any function: a security shape when
        # the code has a role (``scripting=False`` -> ``True`` in an HTML parser)
        defaults: dict[int, list[Line]] = {}
        for d, change in changes:
            if change.startswith("default of") or change.endswith("made required"):
                defaults.setdefault(id(d.hunk), []).append(d.line)

        by_hunk: dict[int, HunkDecision] = {}
        for f, lang in live:
            path_reasons = self._path_reasons(f)
            texts: dict[str, tuple[str, frozenset[str]]] = {}
            matchers = self._file_matchers(f, lang, code_views, self.patterns, texts)
            shapes: list[_PatternMatcher] = []
            if self.roles and syntax(lang).is_code and not syntax(lang).is_docs:
                guarded = {id(h): _with_guard_bodies(h, code_views[id(h)]) for h in f.hunks}
                same = all(guarded[id(h)] is code_views[id(h)] for h in f.hunks)
                shapes = self._file_matchers(f, lang, guarded, self.shapes, texts if same else {})
            facts = _FileFacts(f)
            for hunk in f.hunks:
                extra = cross.get(id(hunk), []) + signatures.get(id(hunk), [])
                code = codes.get(id(hunk))
                decision = self._classify_hunk(
                    f,
                    hunk,
                    view=views[id(hunk)],
                    code_view=code_views[id(hunk)],
                    lang=lang,
                    path_reasons=path_reasons,
                    matchers=matchers,
                    extra=extra,
                    shapes=shapes,
                    defaults=defaults.get(id(hunk), []),
                    facts=facts,
                    code=code,
                    finder=finder,
                )
                if code is not None:
                    scopes = enclosing_scopes(hunk, code)
                    decision = replace(
                        decision, enclosing=tuple(scopes[s] for s in ("new", "old") if s in scopes)
                    )
                by_hunk[id(hunk)] = decision
        decisions.extend(by_hunk.values())
        order = {id(h): i for i, h in enumerate(diff.hunks)}
        decisions.sort(key=lambda d: order[id(d.hunk)])
        return Classification(decisions=tuple(decisions), skipped_files=tuple(skipped))

    # ---------------------------------------------------------------------------------------
    # File level

    def _file_skip(self, f: FileDiff, lang: Language) -> FileSkip | None:
        if f.problem is not None:
            if f.problem == "patch_omitted":
                return FileSkip(f.path, "too_large", "GitHub omitted this file's patch (too large)")
            return FileSkip(f.path, "malformed", f.problem)
        if f.binary:
            return FileSkip(f.path, "binary", "binary file")
        if f.kind is FileKind.SUBMODULE:
            return FileSkip(f.path, "submodule", "submodule pointer change")
        for rule in self.skip_rules:
            glob = rule.match(f.path)
            if glob is not None:
                return FileSkip(f.path, rule.name, f"path matches {glob!r}")
        if not f.hunks:
            if f.status is FileStatus.RENAMED:
                return FileSkip(f.path, "pure_rename", f"renamed from {f.old_path} unchanged")
            if f.status is FileStatus.COPIED:
                return FileSkip(f.path, "pure_copy", f"copied from {f.old_path} unchanged")
            if f.mode_changed:
                return FileSkip(f.path, "mode_only", f"mode {f.old_mode} -> {f.new_mode}")
            if f.status in (FileStatus.ADDED, FileStatus.DELETED):
                return FileSkip(f.path, "empty_file", f"empty file {f.status.value}")
            return FileSkip(f.path, "no_content", "no hunks")
        texts = [ln.text for h in f.hunks for ln in h.lines]
        if "\x00" in "".join(texts):
            line = next(ln for h in f.hunks for ln in h.lines if "\x00" in ln.text)
            return FileSkip(f.path, "binary_content", f"NUL byte on {_where(line)}: binary content")
        if max(map(len, texts), default=0) > self.config.max_line_chars:
            line = max((ln for h in f.hunks for ln in h.lines), key=lambda ln: len(ln.text))
            return FileSkip(
                f.path,
                "minified",
                f"{_where(line)} has {len(line.text)} characters "
                f"(limit {self.config.max_line_chars})",
            )
        marker = self._generated_marker(f)
        if marker is not None:
            return FileSkip(f.path, "generated", f"first lines say {marker!r}")
        if (
            f.status is FileStatus.DELETED
            and self.config.skip_deleted_files
            and not self._path_reasons(f)
            and not self._role_path(f)
        ):
            return FileSkip(f.path, "deleted_file", "file deleted")
        return None

    def _role_path(self, f: FileDiff) -> bool:
        """Whether a security role's path globs match the file (a role, not a verdict)."""
        return any(r.paths is not None and r.paths.match(f.path) for r in self.roles)

    def _generated_marker(self, f: FileDiff) -> str | None:
        first = f.hunks[0]
        if first.new_start > 3:
            return None
        head = [ln.text.lower() for ln in first.lines[:10] if ln.kind is not LineKind.DELETED]
        for marker in self.markers:
            if any(marker in text for text in head):
                return marker
        return None

    def _path_reasons(self, f: FileDiff) -> list[Reason]:
        reasons = []
        for rule in self.deep_path_rules:
            glob = rule.match(f.path)
            if glob is not None:
                reasons.append(Reason(f"deep.path.{rule.name}", "deep", f"path matches {glob!r}"))
        glob = self.manifests.match(f.path)
        if glob is not None:
            reasons.append(
                Reason("deep.manifest", "deep", f"dependency manifest (matches {glob!r})")
            )
        return reasons

    # ---------------------------------------------------------------------------------------
    # Hunk level

    def _classify_hunk(
        self,
        f: FileDiff,
        hunk: Hunk,
        *,
        view: _Changed,
        code_view: _Changed,
        lang: Language,
        path_reasons: list[Reason],
        matchers: list[_PatternMatcher],
        extra: list[Reason],
        shapes: list[_PatternMatcher],
        defaults: list[Line],
        facts: _FileFacts,
        code: HunkCode | None,
        finder: SinkFinder,
    ) -> HunkDecision:
        syn = syntax(lang)
        changed = view.lines
        if _whitespace_only(changed, syn):
            reason = Reason("skip.whitespace_only", SKIP, "only whitespace changed")
            return HunkDecision(hunk, lang, None, "whitespace_only", (reason,))

        reasons: list[Reason] = list(path_reasons)
        if f.kind is FileKind.SYMLINK:
            reasons.append(self._symlink_reason(hunk))
        reasons.extend(_pattern_reasons(code_view, matchers))
        if code is not None and code.code and all(r.tier != "deep" for r in reasons):
            reach = reaches(hunk, lang, code, finder)
            if reach is not None:
                reasons.append(Reason(f"deep.sink.{reach.hit.kind}", "deep", reach.detail()))
        if (
            shapes
            or (defaults and self.roles)
            or (
                self.roles
                and syn.is_code
                and not syn.is_docs
                and _EARLY_EXIT.search(code_view.text)  # an early exit may skip a check
            )
        ):
            reasons.extend(
                self._security_reasons(
                    facts, hunk, code_view, syn, shapes, code=code, defaults=defaults
                )
            )
        reasons.extend(extra)
        reasons.extend(self._shape_reasons(changed, syn, code))
        tier = Tier(max((r.tier for r in reasons), key=_RANK.__getitem__))
        return HunkDecision(hunk, lang, tier, None, tuple(reasons))

    def _symlink_reason(self, hunk: Hunk) -> Reason:
        targets = [ln.text for ln in hunk.lines if ln.kind is LineKind.ADDED]
        for target in targets:
            if target.startswith("/") or ".." in target.split("/"):
                return Reason("deep.symlink_escape", "deep", f"symlink to {target!r}")
        return Reason(
            "fast.symlink", "fast", f"symlink to {targets[0]!r}" if targets else "symlink"
        )

    def _security_reasons(
        self,
        facts: _FileFacts,
        hunk: Hunk,
        view: _Changed,
        syn: Syntax,
        shapes: list[_PatternMatcher],
        *,
        code: HunkCode | None,
        defaults: Sequence[Line] = (),
    ) -> list[Reason]:
        """``deep.security.<role>`` when the change has a shape and the code has a role.

        Shapes are looked for in the changed lines of code that the change really changes:
        comment lines are left out, and so are lines moved to or from another function (the
        same text deleted under one hunk header and added under another: a refactor). A line
        moved within its function stays: a check moved before a use is a change of behaviour.
        """
        moved = facts.moved
        quiet = {id(ln) for ln in code.quiet} if code is not None else set()
        lines: list[Line] = []
        for ln in hunk.lines:
            if ln.kind is LineKind.CONTEXT:
                if lines and _guards(lines[-1], ln):
                    lines.append(ln)
                continue
            if (
                id(ln) not in quiet
                and not (code is None and syn.comment and syn.comment.match(ln.text))
                and not _PROSE.search(ln.text)
                and not (moved and _moved_away(moved.get((ln.kind, ln.text.strip())), hunk))
            ):
                lines.append(ln)
        hits = list(_pattern_hits(_Changed(lines, "\n".join(ln.text for ln in lines)), shapes))
        if not hits:
            hits = self._exit_before_check(hunk, self.shapes)
        hits += [(_DEFAULT_CHANGED, ln) for ln in defaults]
        if not hits:
            return []
        f = facts.file
        header = _headers(hunk, code)
        # The role must be evidence apart from the shape: a token the shape's own expression
        # matches (MAX_SAFE_LENGTH: a size limit, and "limits" code) says the same thing twice.
        # The first shape whose role stands on other evidence decides.
        chosen: int | None = None
        roles: list[tuple[str, str]] = []
        for at, (matcher, _line) in enumerate(hits):
            roles = self._roles(f, hunk, view, facts.imports, header, matcher.regex)
            if roles:
                chosen = at
                break
        if chosen is None:
            return []
        hits = [hits[chosen], *hits[:chosen], *hits[chosen + 1 :]]
        shape, line = hits[0]
        role, evidence = roles[0]
        more = [m.name for m, _ in hits[1:]] + [r for r, _ in roles[1:]]
        also = f" (also: {', '.join(dict.fromkeys(more))})" if more else ""
        return [
            Reason(
                f"deep.security.{role}",
                "deep",
                f"{shape.name}: {_quote(line)}; role {role}: {evidence}{also}",
            )
        ]

    @staticmethod
    def _exit_before_check(
        hunk: Hunk, shapes: list[_PatternMatcher]
    ) -> list[tuple[_PatternMatcher, Line]]:
        """An early exit added in front of an unchanged check: an added ``if`` whose added body
        returns (or continues, breaks), followed within a few lines by a context line where a
        check shape (``check_call``, ``guard``, ``rejects_input``) matches -- a new path that
        skips the check. The hit names the check's shape and quotes the added exit."""
        checks = [m for m in shapes if m.name in _CHECK_SHAPES]
        if not checks:
            return []
        lines = hunk.lines
        for i in range(1, len(lines)):
            ln, prev = lines[i], lines[i - 1]
            if not (
                ln.kind is LineKind.ADDED
                and prev.kind is LineKind.ADDED
                and _EARLY_EXIT.match(ln.text)
                and _GUARD_OPENS.match(prev.text)
            ):
                continue
            after = [c for c in lines[i + 1 : i + 8] if c.kind is LineKind.CONTEXT]
            text = "\n".join(c.text for c in after)
            for m in checks:
                if m.regex.search(text):
                    return [(m, ln)]
        return []

    def _roles(  # noqa: PLR0917 - the hunk's texts, each from its own source
        self,
        f: FileDiff,
        hunk: Hunk,
        view: _Changed,
        imports: str,
        header: str,
        shape: re.Pattern[str] | None = None,
    ) -> list[tuple[str, str]]:
        """Every role of the hunk's code with its evidence, the most direct evidence first: the
        role's path globs, the function header, the changed lines, the file's path, the file's
        imports, then the hunk's context lines (config order among equals). A token that
        ``shape`` matches by itself is no evidence of a role."""
        context = [ln for ln in hunk.lines if ln.kind is LineKind.CONTEXT]
        texts: list[tuple[str, list[Line] | None, str]] = [
            ("in the function header", None, header),
            ("", view.lines, view.text),
            ("in the path", None, f.path),
            ("in the imports", None, imports),
            ("", context, "\n".join(ln.text for ln in context)),
        ]
        present: frozenset[str] = frozenset()
        if self.role_keywords is not None:
            lowered = "\n".join(t for _, _, t in texts).lower()
            present = frozenset(k for _end, k in self.role_keywords.iter(lowered))
        found: list[tuple[int, int, str, str]] = []
        for order, role in enumerate(self.roles):
            glob = role.paths.match(f.path) if role.paths is not None else None
            if glob is not None:
                found.append((0, order, role.name, f"path matches {glob!r}"))
                continue
            if role.regex is None or (role.keywords and present.isdisjoint(role.keywords)):
                continue
            for rank, (source, lines, text) in enumerate(texts):
                m = next(
                    (
                        m
                        for m in role.regex.finditer(text)
                        if shape is None or not shape.search(m.group(0))
                    ),
                    None,
                )
                if m is not None:
                    where = source
                    if lines is not None:
                        where = "on " + _where(lines[text.count("\n", 0, m.start())])
                    found.append((rank, order, role.name, f"{m.group(0)[:40]!r} {where}"))
                    break
        return [(name, evidence) for _r, _o, name, evidence in sorted(found)]

    def _file_matchers(
        self,
        f: FileDiff,
        lang: Language,
        views: dict[int, _Changed],
        rules: list[_PatternMatcher],
        texts: dict[str, tuple[str, frozenset[str]]],
    ) -> list[_PatternMatcher]:
        """The rules that match somewhere in the file's changed lines.

        One pass per rule over the whole file instead of one per hunk: most rules match no
        hunk of most files, and this is where the classifier spends its time on large PRs.
        ``texts`` keeps the file's texts and their keywords between calls.
        """
        out = []
        for matcher in rules:
            if matcher.languages and lang not in matcher.languages:
                continue
            if matcher.lines not in texts:
                if matcher.lines == "changed":  # the common case: the hunks' texts are joined
                    text = "\n".join(views[id(h)].text for h in f.hunks)
                else:
                    kinds = _KINDS[matcher.lines]
                    text = "\n".join(ln.text for h in f.hunks for ln in h.lines if ln.kind in kinds)
                texts[matcher.lines] = (text, self._keywords_in(text))
            text, present = texts[matcher.lines]
            if matcher.keywords and present.isdisjoint(matcher.keywords):
                continue  # no keyword, so no match is possible: skip the (slower) expressions
            if matcher.regex.search(text):
                out.append(matcher)
        return out

    def _keywords_in(self, text: str) -> frozenset[str]:
        if self.keywords is None:
            return frozenset()
        return frozenset(k for _end, k in self.keywords.iter(text.lower()))

    def _shape_reasons(
        self, changed: list[Line], syn: Syntax, parsed: HunkCode | None
    ) -> list[Reason]:
        if syn.is_docs:
            return [Reason("fast.docs", "fast", "documentation")]
        if parsed is not None:
            return self._parsed_shape(parsed)
        meaningful = [ln for ln in changed if ln.text.strip()]
        code = [ln for ln in meaningful if not (syn.comment and syn.comment.match(ln.text))]
        if meaningful and not code:
            return [Reason("fast.comment_only", "fast", "only comments changed")]
        if syn.is_config and not syn.is_code:
            if len(code) > self.config.fast_max_config_lines:
                return [
                    Reason(
                        "logic.large_config",
                        "logic",
                        f"{len(code)} changed config lines (> {self.config.fast_max_config_lines})",
                    )
                ]
            return [Reason("fast.small_config", "fast", f"{len(code)} changed config lines")]
        if self.config.control_flow and syn.control_flow is not None:
            text = "\n".join(ln.text for ln in code)
            m = syn.control_flow.search(text)
            if m is not None:
                line = code[text.count("\n", 0, m.start())]
                return [Reason("logic.control_flow", "logic", _quote(line))]
        if len(code) >= self.config.logic_min_changed_lines:
            return [
                Reason(
                    "logic.non_trivial",
                    "logic",
                    f"{len(code)} changed lines of code (>= {self.config.logic_min_changed_lines})",
                )
            ]
        return [Reason("fast.small_change", "fast", f"{len(code)} changed lines of code")]

    def _parsed_shape(self, parsed: HunkCode) -> list[Reason]:
        """The shape of a change the parser read: comments and strings are no code, control
        flow is the grammar's (``if`` inside a string is none)."""
        code = parsed.code
        if not code:
            what = "comments, docstrings or string literals" if parsed.quiet else "nothing"
            return [Reason("fast.comment_only", "fast", f"only {what} changed")]
        if parsed.strings_only:
            return [
                Reason("fast.strings_only", "fast", "only string literals and comments changed")
            ]
        if self.config.control_flow and parsed.flow is not None:
            return [Reason("logic.control_flow", "logic", _quote(parsed.flow))]
        if len(code) >= self.config.logic_min_changed_lines:
            return [
                Reason(
                    "logic.non_trivial",
                    "logic",
                    f"{len(code)} changed lines of code (>= {self.config.logic_min_changed_lines})",
                )
            ]
        return [Reason("fast.small_change", "fast", f"{len(code)} changed lines of code")]

    # ---------------------------------------------------------------------------------------
    # Cross-file signals

    def _definitions(
        self, live: list[tuple[FileDiff, Language]], defs: _FileDefinitions
    ) -> list[_Definition]:
        """The definitions whose signature a changed line falls in -- from the name (after any
        decorator) to the end of the parameter list and return type -- on the side of the change:
        the old file for deleted lines, the new one for added lines. Read from the syntax tree
        of the whole file where the source is known, else of the hunk's side alone."""
        found = []
        for f, lang in live:
            if grammar_key(lang, f.path) is None:
                continue
            for hunk in f.hunks:
                sides: tuple[tuple[Side, LineKind], ...] = (
                    ("old", LineKind.DELETED),
                    ("new", LineKind.ADDED),
                )
                for side, kind in sides:
                    changed = {
                        _file_line(ln): ln
                        for ln in hunk.lines
                        if ln.kind is kind and ln.text.strip()
                    }
                    if not changed:
                        continue
                    loc = defs.located(hunk, side, lang)
                    if loc is None or not _may_touch_a_signature(loc, changed):
                        continue
                    lines = frozenset(n - loc.offset for n in changed)
                    for sig in signatures(loc.tree, lines):
                        held = [n for n in lines if sig.line <= n <= max(sig.header_end, sig.line)]
                        if not held:
                            continue  # a constant's statement changed below its name's line
                        line = changed[min(held) + loc.offset]
                        found.append(_Definition(sig, f.path, hunk, line, side, lang, loc.offset))
        return found

    @staticmethod
    def _changes(
        definitions: list[_Definition], defs: _FileDefinitions
    ) -> list[tuple[_Definition, str]]:
        """The definitions this diff changes for their users, with what changed: a function
        whose parameters or return type changed (see :func:`signature_change`), or a definition
        removed from its file, bound again nowhere in it and added to no other file. A new
        definition, a moved one, a re-annotated one, a function that only gained optional
        parameters, a class whose bases or a constant whose value changed: none of these.

        A touched definition is compared with the other side's definition of the same name
        (in the same class), the same hunk's first; with several (overloads) it is unchanged
        when any of them is compatible."""
        added_anywhere = {(d.name, d.sig.key) for d in definitions if d.side == "new"}
        out: list[tuple[_Definition, str]] = []
        done: set[tuple[str, int, str, str]] = set()
        for d in definitions:
            key = (d.path, id(d.hunk), d.sig.parent, d.name)
            if key in done:
                continue
            others = defs.counterparts(d)
            if not others:
                if d.side == "new" or _file_line(d.line) - d.offset != d.sig.line:
                    continue  # a new definition, or one whose name line is still there
                if (d.name, d.sig.key) in added_anywhere:  # moved to another file
                    continue
                if d.name in defs.bound_new(d.path, d.language):
                    continue
                done.add(key)
                out.append((d, "removed"))
                continue
            if d.kind != "function":
                continue
            pairs = [(d.sig, o) if d.side == "old" else (o, d.sig) for o in others]
            changes = [signature_change(a, b, d.language) for a, b in pairs]
            if None not in changes:
                done.add(key)
                out.append((d, str(changes[0])))
        return out

    def _cross_file(
        self,
        live: list[tuple[FileDiff, Language]],
        views: dict[int, _Changed],
        changes: list[tuple[_Definition, str]],
    ) -> dict[int, list[Reason]]:
        """``deep.cross_file`` on both sides when a definition whose signature changed (or that
        was removed) in one file is used in another file's change. A removed definition counts
        only where another file *adds* a use of it (a use removed with it is a clean-up)."""
        symbols: dict[str, tuple[_Definition, str]] = {}
        for d, change in changes:
            if (
                len(d.name) >= self.config.min_symbol_length
                and d.name not in _COMMON_SYMBOLS
                and not (d.name.startswith("__") and d.name.endswith("__"))  # __init__ & co.
            ):
                symbols.setdefault(d.name, (d, change))
        if not symbols:
            return {}
        out: dict[int, list[Reason]] = {}
        flagged_defs: set[tuple[str, int]] = set()
        for f, _lang in live:
            for hunk in f.hunks:
                lines, text = views[id(hunk)]
                names = set(_IDENT.findall(text)) & symbols.keys()
                if not names:
                    continue
                added = set(
                    _IDENT.findall("\n".join(ln.text for ln in lines if ln.kind is LineKind.ADDED))
                )
                used = sorted(
                    name
                    for name in names
                    if symbols[name][0].path != f.path
                    and (symbols[name][1] != "removed" or name in added)
                )
                if not used:
                    continue
                d, change = symbols[used[0]]
                more = f" (+{len(used) - 1} more)" if len(used) > 1 else ""
                out.setdefault(id(hunk), []).append(
                    Reason(
                        "deep.cross_file",
                        "deep",
                        f"uses {d.name!r}, {change} in {d.path}{more}",
                    )
                )
                for name in used:
                    d, change = symbols[name]
                    key = (d.name, id(d.hunk))
                    if key not in flagged_defs:
                        flagged_defs.add(key)
                        out.setdefault(id(d.hunk), []).append(
                            Reason(
                                "deep.cross_file",
                                "deep",
                                f"{d.name!r} ({change}) is used in {f.path}",
                            )
                        )
        return out

    def _signature_changes(self, changes: list[tuple[_Definition, str]]) -> dict[int, list[Reason]]:
        """``deep.public_signature`` for a public function whose parameters or return type
        changed; ``deep.public_api_removed`` for a public definition removed."""
        if not self.config.public_signatures:
            return {}
        out: dict[int, list[Reason]] = {}
        for d, change in changes:
            if not d.public:
                continue
            if change == "removed":
                reason = Reason("deep.public_api_removed", "deep", f"{_quote(d.line)} removed")
            else:
                reason = Reason(
                    "deep.public_signature", "deep", f"{d.line.text.strip()[:60]!r}: {change}"
                )
            out.setdefault(id(d.hunk), []).append(reason)
        return out


# --------------------------------------------------------------------------------------------


_KINDS = {
    "changed": frozenset((LineKind.ADDED, LineKind.DELETED)),
    "added": frozenset((LineKind.ADDED,)),
    "deleted": frozenset((LineKind.DELETED,)),
}


def _headers(hunk: Hunk, code: HunkCode | None) -> str:
    """The signatures of the definitions the change sits in, innermost first, on each side:
    what the code is for, by its own names. From the whole file's tree where there is one; else
    git's hunk header (its guess of the enclosing function, the nearest line above that looks
    like one, which is all a fragment offers). Code at the top level has none."""
    if code is None or not code.located:
        return hunk.section
    parts: list[str] = []
    sides: tuple[tuple[Side, LineKind], ...] = (("new", LineKind.ADDED), ("old", LineKind.DELETED))
    for side, kind in sides:
        loc = code.located.get(side)
        if loc is None:
            continue
        if not loc.whole:
            return hunk.section
        first = next((ln for ln in code.code if ln.kind is kind), None)
        if first is None:
            continue
        for d in loc.enclosing(_file_line(first)):
            last = min(d.header_end, d.start + 4)
            parts.extend(loc.tree.line_text(n) for n in range(d.start, last + 1))
    return "\n".join(dict.fromkeys(p.strip() for p in parts))


def _moved_away(sections: set[str] | None, hunk: Hunk) -> bool:
    return bool(sections) and sections != {hunk.section}


class _FileDefinitions:
    """The trees and signatures the signature rules read, each found once per diff: the whole
    file's where the source is known, else each hunk's side parsed alone."""

    def __init__(self, index: CodeIndex, live: list[tuple[FileDiff, Language]]) -> None:
        self.index = index
        self.hunks = {f.path: f.hunks for f, _ in live}
        self._sigs: dict[int, tuple[Signature, ...]] = {}
        self._bound: dict[str, frozenset[str]] = {}
        self._named: dict[tuple[str, Side], dict[str, list[tuple[Signature, int]]]] = {}

    def located(self, hunk: Hunk, side: Side, language: Language) -> Located | None:
        return self.index.locate(hunk, side, language)

    def signatures(self, loc: Located) -> tuple[Signature, ...]:
        key = id(loc.tree)
        if key not in self._sigs:
            self._sigs[key] = signatures(loc.tree)
        return self._sigs[key]

    def _trees(self, path: str, first: Hunk, side: Side, language: Language) -> list[Located]:
        """The trees of a file's side: the whole file, else each hunk's fragment, ``first``'s
        first."""
        loc = self.located(first, side, language)
        if loc is not None and loc.whole:
            return [loc]
        out = [loc] if loc is not None else []
        for h in self.hunks.get(path, ()):
            if h is not first:
                other = self.located(h, side, language)
                if other is not None:
                    out.append(other)
        return out

    def counterparts(self, d: _Definition) -> list[Signature]:
        """The other side's definitions of ``d``'s name and kind: in the same class where there
        is one, else anywhere in the file."""
        other: Side = "new" if d.side == "old" else "old"
        key = (d.path, other)
        if key not in self._named:
            by_name: dict[str, list[tuple[Signature, int]]] = {}
            for loc in self._trees(d.path, d.hunk, other, d.language):
                for s in self.signatures(loc):
                    by_name.setdefault(s.name, []).append((s, id(loc.tree)))
            self._named[key] = by_name
        mine = self.located(d.hunk, other, d.language)
        here = id(mine.tree) if mine is not None else 0
        found = [(s, t) for s, t in self._named[key].get(d.name, ()) if s.kind == d.kind]
        # the same hunk's definitions first (a fragment's), then the rest of the file's
        named = [s for s, t in sorted(found, key=lambda st: st[1] != here)]
        same_class = [s for s in named if s.parent == d.sig.parent]
        return same_class or named

    def bound_new(self, path: str, language: Language) -> frozenset[str]:
        """The names the new side of ``path`` still binds (definitions, assignments, imports)."""
        if path not in self._bound:
            hunks = self.hunks.get(path, ())
            trees = self._trees(path, hunks[0], "new", language) if hunks else []
            self._bound[path] = frozenset().union(*(bound_names(t.tree) for t in trees))
        return self._bound[path]


def _may_touch_a_signature(loc: Located, lines: Iterable[int]) -> bool:
    """Whether one of these file lines is in a definition's signature or at the top level (a
    constant's): most changed lines are in a body, and their file needs no signature read."""
    for n in lines:
        inner = loc.enclosing(n)
        if not inner:
            return True
        if any(d.start <= n - loc.offset <= d.header_end for d in inner):
            return True
    return False


def _file_line(ln: Line) -> int:
    n = ln.old_no if ln.kind is LineKind.DELETED else ln.new_no
    assert n is not None
    return n


class _FileFacts:
    """What the security signals need of a file, found once, when a hunk first needs it."""

    def __init__(self, file: FileDiff) -> None:
        self.file = file

    @cached_property
    def imports(self) -> str:
        return "\n".join(
            _IMPORT.findall("\n".join(ln.text for h in self.file.hunks for ln in h.lines))
        )

    @cached_property
    def moved(self) -> dict[tuple[LineKind, str], set[str]]:
        """(kind, text) of a changed line -> the hunk headers under which the same text is
        changed the other way (deleted for an added line, added for a deleted one)."""
        sides: dict[tuple[LineKind, str], set[str]] = {}
        for h in self.file.hunks:
            for ln in h.lines:
                if ln.kind is not LineKind.CONTEXT and not ln.text.isspace() and ln.text:
                    sides.setdefault((ln.kind, ln.text.strip()), set()).add(h.section)
        flip = {LineKind.ADDED: LineKind.DELETED, LineKind.DELETED: LineKind.ADDED}
        return {
            (kind, text): sides[(flip[kind], text)]
            for kind, text in sides
            if (flip[kind], text) in sides
        }


class _Changed(NamedTuple):
    """A hunk's added and deleted lines, and their texts joined: built once per hunk."""

    lines: list[Line]
    text: str


def _view(hunk: Hunk) -> _Changed:
    lines = [ln for ln in hunk.lines if ln.kind is not LineKind.CONTEXT]
    return _Changed(lines, "\n".join(ln.text for ln in lines))


def _code_view(code: HunkCode | None, view: _Changed) -> _Changed:
    """The changed lines that hold code (``view`` itself when all do, or when unparsed)."""
    if code is None or not code.quiet:
        return view
    quiet = {id(ln) for ln in code.quiet}
    lines = [ln for ln in view.lines if id(ln) not in quiet]
    return _Changed(lines, "\n".join(ln.text for ln in lines))


def _guards(changed: Line, context: Line) -> bool:
    """``context`` is the unchanged body of a guard whose condition ``changed`` changed (a
    changed ``if`` line followed by an unchanged ``raise``): it tells what the change guards."""
    return (
        changed.kind is not LineKind.CONTEXT
        and context.kind is LineKind.CONTEXT
        and _GUARD_BODY.match(context.text) is not None
        and _GUARD_OPENS.match(changed.text) is not None
    )


def _with_guard_bodies(hunk: Hunk, view: _Changed) -> _Changed:
    """The changed lines and the unchanged guard bodies after changed conditions (see
    :func:`_guards`): what the security shapes look at. ``view`` itself when there is none."""
    if _GUARD_OPENS_ANY.search(view.text) is None:  # no changed condition: the common case
        return view
    lines = hunk.lines
    context = LineKind.CONTEXT
    if not any(
        b.kind is context and a.kind is not context and _guards(a, b)
        for a, b in itertools.pairwise(lines)
    ):
        return view
    out = [
        b
        for i, b in enumerate(lines)
        if b.kind is not LineKind.CONTEXT or (i > 0 and _guards(lines[i - 1], b))
    ]
    return _Changed(out, "\n".join(ln.text for ln in out))


def _pattern_hits(
    view: _Changed, matchers: list[_PatternMatcher]
) -> Iterable[tuple[_PatternMatcher, Line]]:
    """Which of the file's matching rules match in these changed lines, and on which line."""
    selections: dict[str, tuple[list[Line], str]] = {"changed": view}
    for matcher in matchers:
        if matcher.lines not in selections:
            kinds = _KINDS[matcher.lines]
            lines = [ln for ln in view.lines if ln.kind in kinds]
            selections[matcher.lines] = (lines, "\n".join(ln.text for ln in lines))
        lines, text = selections[matcher.lines]
        m = matcher.regex.search(text)
        if m is not None:
            yield matcher, lines[text.count("\n", 0, m.start())]


def _pattern_reasons(view: _Changed, matchers: list[_PatternMatcher]) -> Iterable[Reason]:
    for matcher, line in _pattern_hits(view, matchers):
        yield Reason(f"deep.pattern.{matcher.name}", "deep", _quote(line))


def _whitespace_only(changed: list[Line], syn: Syntax) -> bool:
    if not changed:
        return False
    old = [ln.text for ln in changed if ln.kind is LineKind.DELETED]
    new = [ln.text for ln in changed if ln.kind is LineKind.ADDED]
    old_blank = not any(map(str.strip, old))
    new_blank = not any(map(str.strip, new))
    if old_blank or new_blank:  # content on one side only: whitespace-only iff none on either
        return old_blank and new_blank
    if syn.indentation_matters:
        # Only trailing whitespace and blank lines are cosmetic where indentation is syntax.
        return [t.rstrip() for t in old if t.strip()] == [t.rstrip() for t in new if t.strip()]
    return _squash("".join(old)) == _squash("".join(new))


def _squash(text: str) -> str:
    return "".join(text.split())


def _where(line: Line) -> str:
    if line.kind is LineKind.DELETED:
        return f"old line {line.old_no}"
    return f"line {line.new_no}"


def _quote(line: Line) -> str:
    sign, no = ("-", line.old_no) if line.kind is LineKind.DELETED else ("+", line.new_no)
    if line.kind is LineKind.CONTEXT:  # an unchanged guard body, quoted as the diff shows it
        sign = " "
    text = line.text.strip()
    if not (text.isascii() and text.isprintable()):  # show hidden characters, never render them
        text = "".join(
            f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text
        )
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{sign}{no}: {text}"
