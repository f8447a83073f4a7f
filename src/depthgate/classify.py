"""Depth classification: every hunk gets one tier (fast, logic, deep) or a skip reason, plus the
reasons that decided it.

The rules come from the config's ``classify:`` section (defaults in
``data/classify-defaults.yaml``). Order of decision, per hunk:

1. the file is skipped (malformed, binary, submodule, lockfile, generated, vendored, minified,
   pure rename or copy, mode-only, empty, deleted) -> every hunk of it is skipped with that reason;
2. the hunk only changes whitespace (indentation counts in Python and YAML) -> skipped;
3. otherwise every rule is evaluated and the deepest tier any of them gives wins:
   deep  -- a security-sensitive path, a dangerous pattern in the changed lines, a dependency
            manifest, a symbol changed in one file and used in another, a changed or removed
            public signature, a symlink pointing out of the repository;
   logic -- changed control flow, or more changed lines of code than the threshold, or a large
            config change;
   fast  -- comments, docs, small config and small code changes.

Every reason names its rule (``deep.pattern.shell_exec``) and what matched
(``+12: subprocess.run(cmd, shell=True)``). Deterministic and pure: same diff and config, same
answer.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import ahocorasick
import pathspec

from depthgate.diff import Diff, FileDiff, FileKind, FileStatus, Hunk, Line, LineKind
from depthgate.languages import Language, Syntax, defined_name, detect, syntax
from depthgate.routes import ClassifyConfig, PatternRule, Tier

SKIP = "skip"
_RANK = {Tier.FAST.value: 0, Tier.LOGIC.value: 1, Tier.DEEP.value: 2}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LEADING_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
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
    name: str
    path: str
    hunk: Hunk
    line: Line
    public: bool


class Classifier:
    """Compiled rules of one ClassifyConfig. Build once, classify many diffs."""

    def __init__(self, config: ClassifyConfig) -> None:
        self.config = config
        self.skip_rules = [_PathRule(n, g) for n, g in config.skip_paths.items()]
        self.deep_path_rules = [_PathRule(n, g) for n, g in config.deep_paths.items()]
        self.manifests = _PathRule("manifest", config.manifests)
        self.patterns = [_PatternMatcher.build(n, r) for n, r in config.deep_patterns.items()]
        self.keywords = _keyword_automaton(k for m in self.patterns for k in m.keywords)
        self.markers = [m.lower() for m in config.generated_markers]

    # ---------------------------------------------------------------------------------------

    def classify(self, diff: Diff) -> Classification:
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
        definitions = self._definitions(live, views)
        cross = self._cross_file(live, views, definitions) if self.config.cross_file else {}
        signatures = self._signature_changes(live, definitions)

        by_hunk: dict[int, HunkDecision] = {}
        for f, lang in live:
            path_reasons = self._path_reasons(f)
            matchers = self._file_matchers(f, lang, views)
            for hunk in f.hunks:
                extra = cross.get(id(hunk), []) + signatures.get(id(hunk), [])
                by_hunk[id(hunk)] = self._classify_hunk(
                    f,
                    hunk,
                    view=views[id(hunk)],
                    lang=lang,
                    path_reasons=path_reasons,
                    matchers=matchers,
                    extra=extra,
                )
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
        ):
            return FileSkip(f.path, "deleted_file", "file deleted")
        return None

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
        lang: Language,
        path_reasons: list[Reason],
        matchers: list[_PatternMatcher],
        extra: list[Reason],
    ) -> HunkDecision:
        syn = syntax(lang)
        changed = view.lines
        if _whitespace_only(changed, syn):
            reason = Reason("skip.whitespace_only", SKIP, "only whitespace changed")
            return HunkDecision(hunk, lang, None, "whitespace_only", (reason,))

        reasons: list[Reason] = list(path_reasons)
        if f.kind is FileKind.SYMLINK:
            reasons.append(self._symlink_reason(hunk))
        reasons.extend(_pattern_reasons(hunk, view, matchers))
        reasons.extend(extra)
        reasons.extend(self._shape_reasons(changed, syn))
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

    def _file_matchers(
        self, f: FileDiff, lang: Language, views: dict[int, _Changed]
    ) -> list[_PatternMatcher]:
        """The pattern rules that match somewhere in the file's changed lines.

        One pass per rule over the whole file instead of one per hunk: most rules match no
        hunk of most files, and this is where the classifier spends its time on large PRs.
        """
        texts: dict[str, tuple[str, frozenset[str]]] = {}
        out = []
        for matcher in self.patterns:
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

    def _shape_reasons(self, changed: list[Line], syn: Syntax) -> list[Reason]:
        if syn.is_docs:
            return [Reason("fast.docs", "fast", "documentation")]
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

    # ---------------------------------------------------------------------------------------
    # Cross-file signals

    def _definitions(
        self, live: list[tuple[FileDiff, Language]], views: dict[int, _Changed]
    ) -> list[_Definition]:
        found = []
        for f, lang in live:
            syn = syntax(lang)
            if syn.definition is None:
                continue
            for hunk in f.hunks:
                changed, text = views[id(hunk)]
                starts: list[int] = []
                for m in syn.definition.finditer(text):
                    name = defined_name(m)
                    if name is None:
                        continue
                    if not starts:
                        lengths = (len(ln.text) + 1 for ln in changed)
                        starts = list(itertools.accumulate(lengths, initial=0))
                    line = changed[bisect.bisect_right(starts, m.start()) - 1]
                    public = bool(syn.public and syn.public.search(line.text))
                    found.append(_Definition(name, f.path, hunk, line, public))
        return found

    def _cross_file(
        self,
        live: list[tuple[FileDiff, Language]],
        views: dict[int, _Changed],
        definitions: list[_Definition],
    ) -> dict[int, list[Reason]]:
        symbols: dict[str, _Definition] = {}
        for d in definitions:
            if len(d.name) >= self.config.min_symbol_length and d.name not in _COMMON_SYMBOLS:
                symbols.setdefault(d.name, d)
        if not symbols:
            return {}
        out: dict[int, list[Reason]] = {}
        flagged_defs: set[tuple[str, int]] = set()
        for f, _lang in live:
            for hunk in f.hunks:
                text = views[id(hunk)].text
                used = sorted(
                    name
                    for name in set(_IDENT.findall(text)) & symbols.keys()
                    if symbols[name].path != f.path
                )
                if not used:
                    continue
                d = symbols[used[0]]
                more = f" (+{len(used) - 1} more)" if len(used) > 1 else ""
                out.setdefault(id(hunk), []).append(
                    Reason("deep.cross_file", "deep", f"uses {d.name!r} changed in {d.path}{more}")
                )
                for name in used:
                    d = symbols[name]
                    key = (d.name, id(d.hunk))
                    if key not in flagged_defs:
                        flagged_defs.add(key)
                        out.setdefault(id(d.hunk), []).append(
                            Reason("deep.cross_file", "deep", f"{d.name!r} is used in {f.path}")
                        )
        return out

    def _signature_changes(
        self, live: list[tuple[FileDiff, Language]], definitions: list[_Definition]
    ) -> dict[int, list[Reason]]:
        if not self.config.public_signatures:
            return {}
        out: dict[int, list[Reason]] = {}
        added_in_file: dict[tuple[str, str], _Definition] = {}
        for d in definitions:
            if d.line.kind is LineKind.ADDED:
                added_in_file.setdefault((d.path, d.name), d)
        for d in definitions:
            if d.line.kind is not LineKind.DELETED or not d.public:
                continue
            new = added_in_file.get((d.path, d.name))
            if new is None:
                reason = Reason("deep.public_api_removed", "deep", f"{_quote(d.line)} removed")
            elif _squash(new.line.text) != _squash(d.line.text):
                reason = Reason(
                    "deep.public_signature",
                    "deep",
                    f"{d.line.text.strip()[:60]!r} -> {new.line.text.strip()[:60]!r}",
                )
            else:
                continue
            out.setdefault(id(d.hunk), []).append(reason)
        return out


# --------------------------------------------------------------------------------------------


_KINDS = {
    "changed": frozenset((LineKind.ADDED, LineKind.DELETED)),
    "added": frozenset((LineKind.ADDED,)),
    "deleted": frozenset((LineKind.DELETED,)),
}


def _keyword_automaton(keywords: Iterable[str]) -> ahocorasick.Automaton | None:
    """One Aho-Corasick automaton for every rule's keywords: one pass finds them all."""
    words = sorted(set(keywords))
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    return automaton


class _Changed(NamedTuple):
    """A hunk's added and deleted lines, and their texts joined: built once per hunk."""

    lines: list[Line]
    text: str


def _view(hunk: Hunk) -> _Changed:
    lines = [ln for ln in hunk.lines if ln.kind is not LineKind.CONTEXT]
    return _Changed(lines, "\n".join(ln.text for ln in lines))


def _pattern_reasons(
    hunk: Hunk, view: _Changed, matchers: list[_PatternMatcher]
) -> Iterable[Reason]:
    """Which of the file's matching rules match in this hunk, and on which line."""
    selections: dict[str, tuple[list[Line], str]] = {"changed": view}
    for matcher in matchers:
        if matcher.lines not in selections:
            kinds = _KINDS[matcher.lines]
            lines = [ln for ln in hunk.lines if ln.kind in kinds]
            selections[matcher.lines] = (lines, "\n".join(ln.text for ln in lines))
        lines, text = selections[matcher.lines]
        m = matcher.regex.search(text)
        if m is not None:
            line = lines[text.count("\n", 0, m.start())]
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
    text = line.text.strip()
    if not (text.isascii() and text.isprintable()):  # show hidden characters, never render them
        text = "".join(
            f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text
        )
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{sign}{no}: {text}"
