"""The sticky summary comment: what the PR sees once per run, edited in place (design §6).

Rendered from a review outcome: a partial-review banner when hunks failed, the routing table per
alias (hunks, calls, tokens, latency, cost), what was skipped and why, and the findings that
could not be placed inline. A hidden marker at the end carries the state later runs need: the
reviewed head SHA, the fingerprints already posted (so a re-run posts nothing twice) and the keys
of the hunks already reviewed (so a new push re-reviews only what changed). Pure. The body never
exceeds GitHub's 65,536 characters, and the marker survives any truncation.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from depthgate.core.markdown import Escape
from depthgate.core.pipeline import FINGERPRINT_MARK, ReviewOutcome
from depthgate.core.sanitize import SanitizePolicy
from depthgate.core.wording import plural

MARKER = "depthgate:summary"
MAX_CHARS = 65_536
MAX_FPS = 600  # ~23 characters each
SKIPPED_FILES_SHOWN = 50
MAX_HUNKS = 1500  # ~15 characters each: the marker stays under 40,000 characters
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
    hunks: frozenset[str] = field(default_factory=frozenset)  # plan.hunk_key of reviewed hunks
    version: int = 1

    def to_marker(self) -> str:
        # Capped so the marker always leaves room for the visible summary. Fingerprints past the
        # cap are still found in the review comments themselves; hunks past it are reviewed
        # again next time (costlier, never wrong).
        fps = sorted(self.fingerprints)[:MAX_FPS]
        hunks = sorted(self.hunks)[:MAX_HUNKS]
        data = {"v": self.version, "head": self.head_sha, "fps": fps, "hunks": hunks}
        return f"<!-- {MARKER} {json.dumps(data, separators=(',', ':'))} -->"


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
    return SummaryState(
        head_sha=data["head"],
        fingerprints=_strings(data.get("fps")),
        hunks=_strings(data.get("hunks")),
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
