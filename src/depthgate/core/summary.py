"""The sticky summary comment: what the PR sees once per run, edited in place (design §6).

Rendered from a review outcome: a partial-review banner when hunks failed, the routing table per
alias (hunks, calls, tokens, latency, cost), what was skipped and why, and the findings that
could not be placed inline. A hidden marker at the end carries the state later runs need: the
reviewed head SHA, the fingerprints already posted (so a re-run posts nothing twice) and the keys
of the hunks already reviewed (so a new push re-reviews only what changed). Pure. The body never
exceeds GitHub's 65,536 characters, and the marker survives any truncation.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from depthgate.core.markdown import Escape
from depthgate.core.pipeline import FINGERPRINT_MARK, ReviewOutcome
from depthgate.core.sanitize import SanitizePolicy
from depthgate.core.source import SourceMode, Sources
from depthgate.core.wording import plural

MARKER = "depthgate:summary"
MAX_CHARS = 65_536
MAX_FPS = 600  # ~23 characters each
SKIPPED_FILES_SHOWN = 50
# The marker never takes more than this; the visible summary keeps the rest of the 65,536.
MAX_MARKER = 48_000
# Reviewed hunks travel as one base64 string of their sorted keys' leading bytes: 8 characters
# a hunk at the full 6 bytes of plan.hunk_key (2,000 hunks: 16,000 characters), down to 4 bytes
# (about 6,400 hunks next to 600 fingerprints) when the PR is larger. A 4-byte prefix takes an
# unreviewed hunk for a reviewed one with odds of n / 2**32 (6,400 hunks: 1 in 670,000).
KEY_BYTES = 6
MIN_KEY_BYTES = 4
_HEX = re.compile(r"[0-9a-f]+")
# The marker's one pattern: read (parse_state), replaced (with_state), removed (strip_marker)
_STATE = re.compile(
    r"(?P<lead>\n*)<!-- " + re.escape(MARKER) + r" (?P<json>\{.*?\}) -->", re.DOTALL
)
EARLIER = "Earlier findings not placed inline, in files not reviewed again in full"
MAX_EARLIER = 300
_FINDING_LINE = re.compile(
    r"^- \*\*(?:info|low|medium|high|critical)\*\* (?P<path>`+[^\n]*?`+):\d+ — [^\n]*$",
    re.MULTILINE,
)
_AS_OF = re.compile(r"\(as of [0-9a-f]{7,40}\)$")
_FP = re.compile(re.escape(FINGERPRINT_MARK) + r"(?P<fp>[0-9a-f]{8,64})")


@dataclass(frozen=True)
class SummaryState:
    head_sha: str
    fingerprints: frozenset[str] = field(default_factory=frozenset)
    # plan.hunk_key of reviewed hunks, or their leading hex digits when read from a marker
    # that had to shorten them: ask :meth:`reviewed`, not ``in``
    hunks: frozenset[str] = field(default_factory=frozenset)

    def reviewed(self, keys: Iterable[str]) -> frozenset[str]:
        """The ``keys`` (full plan.hunk_key values) this state records as reviewed."""
        widths = {len(k) for k in self.hunks}
        return frozenset(k for k in keys if any(k[:w] in self.hunks for w in widths))

    def to_marker(self) -> str:
        # Capped so the marker always leaves room for the visible summary. Fingerprints past the
        # cap are still found in the review comments themselves.
        fps = sorted(self.fingerprints)[:MAX_FPS]
        data: dict[str, object] = {"v": 2, "head": self.head_sha, "fps": fps}
        head = len(_marker(data))
        width, packed = _pack_keys(self.hunks, MAX_MARKER - head - len(',"kb":6,"hk":""'))
        data |= {"kb": width, "hk": packed}
        return _marker(data)


def _marker(data: dict[str, object]) -> str:
    return f"<!-- {MARKER} {json.dumps(data, separators=(',', ':'))} -->"


def _pack_keys(keys: Collection[str], room: int) -> tuple[int, str]:
    """The widest prefix (KEY_BYTES down to MIN_KEY_BYTES) at which every key fits in ``room``
    base64 characters. Past the narrowest width's capacity the highest keys are left out (they
    are reviewed again: costlier, never wrong)."""
    hexes = [k for k in keys if _HEX.fullmatch(k) and len(k) % 2 == 0]
    width = min([KEY_BYTES, *(len(k) // 2 for k in hexes)])
    width = max(width, 1)
    while True:
        prefixes = sorted({bytes.fromhex(k[: 2 * width]) for k in hexes})
        fits = _b64_len(len(prefixes) * width) <= room
        if fits or width <= MIN_KEY_BYTES:
            break
        width -= 1
    if not fits:
        prefixes = prefixes[: (room // 4 * 3) // width]
    return width, base64.b64encode(b"".join(prefixes)).decode("ascii")


def _b64_len(n: int) -> int:
    return (n + 2) // 3 * 4


def _unpack_keys(width: object, packed: object) -> frozenset[str]:
    if not isinstance(width, int) or not isinstance(packed, str) or not 1 <= width <= 32:
        return frozenset()
    try:
        raw = base64.b64decode(packed, validate=True)
    except ValueError:
        return frozenset()
    if len(raw) % width:
        return frozenset()
    return frozenset(raw[i : i + width].hex() for i in range(0, len(raw), width))


def parse_state(body: str) -> SummaryState | None:
    """The state in a summary comment's marker, or None when there is none or it is damaged."""
    m = _STATE.search(body)
    if m is None:
        return None
    try:
        data = json.loads(m.group("json"))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("head"), str):
        return None
    if data.get("v") == 2:
        hunks = _unpack_keys(data.get("kb"), data.get("hk"))
    else:  # version 1: the keys as a JSON list, at most 1,500 of them
        hunks = _strings(data.get("hunks"))
    return SummaryState(
        head_sha=data["head"],
        fingerprints=_strings(data.get("fps")),
        hunks=hunks,
    )


def with_state(body: str, state: SummaryState) -> str:
    """``body`` with its marker replaced by ``state``'s (the visible summary kept as it is)."""
    return _STATE.sub(lambda m: m.group("lead") + state.to_marker(), body, count=1)


def strip_marker(body: str) -> str:
    """The summary without its hidden marker (the job summary shows what people read)."""
    return _STATE.sub("", body)


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


def earlier_findings(body: str, paths: Collection[str], head_sha: str) -> list[str]:
    """The finding lines of an earlier summary (not placed inline, or carried from before) on
    ``paths``, each marked with the commit its line number refers to; at most MAX_EARLIER."""
    # a path is found by its code span as render_summary writes it (the span adapts to the
    # path's backticks); the earlier summary's code spans are never parsed back into paths
    spans = {Escape().code(p) for p in paths}
    out = []
    for m in _FINDING_LINE.finditer(body):
        if m.group("path") in spans:
            line = m.group(0)
            out.append(line if _AS_OF.search(line) else f"{line} (as of {head_sha[:12]})")
    return out[:MAX_EARLIER]


def fingerprints_in(bodies: Iterable[str]) -> frozenset[str]:
    """Fingerprints of depthgate's own comments, from their hidden markers."""
    return frozenset(m.group("fp") for body in bodies for m in _FP.finditer(body))


CONTEXT_FILES_SHOWN = 10


def context_lines(sources: Sources, policy: SanitizePolicy) -> list[str]:
    """Where the code around the hunks came from, and which files had the diff alone."""
    if sources.mode is SourceMode.DIFF:
        return ["", "**Context:** diff only (no source files were read)"]
    missing = [f for f in sources.files.values() if f.missing]
    line = f"**Context:** source from {sources.mode.value}"
    if not missing:
        return ["", line]
    md = Escape.of(policy.secrets)  # a path is the PR's text: a code span it cannot leave
    shown = "; ".join(
        f"{md.code(f.path)} (context: diff only -- {md.text(f.missing or '')})"
        for f in missing[:CONTEXT_FILES_SHOWN]
    )
    more = len(missing) - CONTEXT_FILES_SHOWN
    return ["", f"{line}; {shown}" + (f" and {more} more" if more > 0 else "")]


def render_summary(
    outcome: ReviewOutcome,
    state: SummaryState,
    *,
    title: str = "depthgate",
    notes: Sequence[str] = (),
    policy: SanitizePolicy | None = None,
    earlier: Sequence[str] = (),
) -> str:
    """``notes``: what this run did that the outcome does not say (hunks reused from an earlier
    run, comments already on the PR, a head that moved, comments demoted after a 422).
    ``earlier``: finding lines of earlier summaries (:func:`earlier_findings`), kept because
    their hunks were not reviewed again."""
    policy = policy or SanitizePolicy()
    md = Escape.of(policy.secrets)
    counts = outcome.counts()
    lines = [f"## {title} review"]
    if counts["failed"]:
        lines += [
            "",
            f"> [!WARNING]\n> **Partial review: {counts['reviewed']}/{counts['total']} hunks "
            f"reviewed.** {counts['failed']} could not be reviewed (see the job's handoff note); "
            f"no comment here covers them.",
        ]
    lines += [
        "",
        f"{plural(len(outcome.comments), 'inline comment')} · "
        f"{plural(len(outcome.summary_only), 'finding')} below · "
        f"hunks: {counts['reviewed']} reviewed, {counts['skipped']} skipped, {counts['failed']} "
        f"failed",
        "",
        "| alias | hunks | calls | input tokens | output tokens | latency | cost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    if notes:
        lines[-3:-3] = ["", *(f"- {md.text(n)}" for n in notes)]
    hunks_by_alias = Counter(h.alias for h in outcome.hunks if h.state == "reviewed")
    for alias, u in outcome.usage.items():
        cost = f"${u.cost:.4f}" if u.cost is not None else "-"
        lines.append(
            f"| {md.code(alias, table=True)} | {hunks_by_alias.get(alias, 0)} | {u.calls} | "
            f"{u.input_tokens:,} | "
            f"{u.output_tokens:,} | {u.latency_ms / 1000:.1f} s | {cost} |"
        )
    lines += context_lines(outcome.plan.sources, policy)
    files = outcome.plan.classification.skipped_files
    if files:
        shown = ", ".join(
            f"{md.code(f.path)} ({md.text(f.reason)})" for f in files[:SKIPPED_FILES_SHOWN]
        )
        more = len(files) - SKIPPED_FILES_SHOWN
        lines += ["", f"**Skipped files:** {shown}" + (f" and {more} more" if more > 0 else "")]
    skipped_paths = {f.path for f in files}
    skipped = Counter(
        h.reason for h in outcome.hunks if h.state == "skipped" and h.path not in skipped_paths
    )
    if skipped:
        lines += [
            "",
            "**Skipped hunks:** "
            + ", ".join(f"{md.text(r)} ({n})" for r, n in skipped.most_common()),
        ]
    if outcome.escalations:
        n = len(outcome.escalations)
        lines += ["", f"**Escalated:** {n} hunks flagged for a deeper review"]
        lines += [
            f"- {md.code(e.path)} {md.code(e.header)}: {md.code(e.from_alias)} → "
            f"{md.code(e.to_alias)}, {md.text(e.state)} — {md.text(e.reason)}"
            for e in outcome.escalations
        ]
    if outcome.summary_only:
        lines += ["", "<details><summary>Findings not placed inline</summary>", ""]
        for s in outcome.summary_only:
            f = s.finding
            # the title was sanitized as prose (pipeline._summary), on one line
            lines.append(
                f"- **{f.severity}** {md.code(f.path)}:{f.line} — {f.title} "
                f"<sub>({md.text(s.reason)}; {md.text(s.provenance.tier)} via "
                f"{md.code(s.provenance.alias)})</sub>"
            )
        lines += ["", "</details>"]
    if earlier:
        lines += [
            "",
            f"<details><summary>{EARLIER} ({len(earlier)})</summary>",
            "",
            *earlier,
            "",
            "</details>",
        ]
    if outcome.fallback_used:
        lines += ["", f"Declared fallback {md.code(outcome.fallback_used)} served some tasks."]
    marker = "\n\n" + state.to_marker()
    body = "\n".join(lines)
    room = MAX_CHARS - len(marker)
    if len(body) > room:
        note = "\n\n… (summary truncated at GitHub's 65,536 characters)"
        body = body[: room - len(note)] + note
    return body + marker
