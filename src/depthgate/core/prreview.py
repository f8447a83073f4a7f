"""One review of one pull request, start to finish: the pipeline the Action, ``review --pr`` and
the GitHub App share (design §6).

    read the PR, its files and depthgate's earlier comments      (GitHub reads)
    plan, leaving out hunks an earlier run already reviewed      (pure)
    review through the gateway                                   (pipeline.review)
    post one review (COMMENT, commit_id = the reviewed head),
    then create or edit the one sticky summary                   (at most two GitHub writes)

Posting rules kept here:

* **No duplicates.** A comment whose fingerprint is already on the PR is not sent. Only
  comments written by depthgate itself (``trusted_authors``) count: a PR author cannot silence
  a finding by pasting its fingerprint, or fake the summary's state.
* **Incremental.** The summary's hidden marker lists the hunks already reviewed (by path and
  content, :func:`depthgate.core.plan.hunk_key`); on a new push only the others are sent.
* **Never a 422 by design.** Comments are placed on the reviewed head's diff and posted with
  that head as ``commit_id``, even when the PR moved on meanwhile (GitHub shows them as
  outdated where the new commits changed the line). If GitHub answers 422 anyway, the comments
  are checked again against the PR as it is now: the ones still valid (same line, same text)
  are posted once against the new head, the others move to the summary. No per-comment trial
  posts.
* **Partial reviews** (threats.md): with some hunks failed, the completed part is posted and the
  summary opens with "Partial review: X/Y"; with nothing completed, nothing is posted at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from depthgate.core.diff import Anchor, Diff, Side, parse_github_files
from depthgate.core.findings import PullRequestText
from depthgate.core.guidance import Guidance
from depthgate.core.models import Comment, Finding, SummaryOnly
from depthgate.core.pipeline import ReviewOptions, ReviewOutcome, review
from depthgate.core.plan import UNCHANGED, Plan, build_plan, hunk_key
from depthgate.core.ports import (
    ExistingComment,
    Gateway,
    GitHubErrorClass,
    GitHubFailure,
    PullRequestInfo,
)
from depthgate.core.publish import ReviewPayload, review_payload
from depthgate.core.routes import LoadedConfig
from depthgate.core.sanitize import SanitizePolicy
from depthgate.core.source import DIFF_ONLY, Sources
from depthgate.core.summary import (
    SummaryState,
    earlier_findings,
    fingerprints_in,
    parse_state,
    render_summary,
    with_state,
)
from depthgate.core.wording import plural


class PullRequestPort(Protocol):
    """What a review run needs from GitHub (:class:`depthgate.github.client.PullRequestClient`)."""

    def info(self) -> PullRequestInfo: ...
    def files(self) -> list[dict[str, Any]]: ...
    def issue_comments(self) -> list[ExistingComment]: ...
    def review_comments(self) -> list[ExistingComment]: ...
    def create_review(self, payload: ReviewPayload) -> int: ...
    def create_comment(self, body: str) -> int: ...
    def edit_comment(self, comment_id: int, body: str) -> None: ...


@dataclass(frozen=True)
class PrReviewOptions:
    review: ReviewOptions = field(default_factory=ReviewOptions)
    dry_run: bool = False  # read and review, post nothing
    # Logins whose comments are depthgate's own (the Action: github-actions[bot]; the App: its
    # bot login). None trusts every author -- only for a token that nobody else writes with.
    trusted_authors: frozenset[str] | None = None
    title: str = "depthgate"
    # Asked right before posting: False ends the run without posting (the App: a newer head of
    # the PR was delivered meanwhile, and its own job will post).
    proceed: Callable[[], bool] | None = None
    # /depthgate review --full: every hunk again, as if no earlier run had reviewed any
    # (fingerprints still keep what is already on the PR from being posted twice)
    full: bool = False
    # The source port (design §9): the changed files' content for this PR and diff (the Action:
    # checkout, else GitHub; the App: GitHub). None: the diff only.
    sources: Callable[[PullRequestInfo, Diff], Sources] | None = None
    # The guideline files, when the config came without them: asked right after ``sources``,
    # whose read may have brought them (the Action with its workflow's config: input). Gives
    # the guidelines and a warning for each file that exists but cannot be used.
    guidelines: Callable[[], tuple[Sequence[Guidance], Sequence[str]]] | None = None


@dataclass
class PrRun:
    """What one run did. ``pr`` is None when the PR could not be read; ``outcome`` is None when
    nothing was reviewed (PR closed, every hunk already reviewed at an earlier head, or GitHub
    failed first). ``github_failure`` is set when GitHub refused a read or a write: what the run
    did until then is all here, for the handoff note and the job summary."""

    pr: PullRequestInfo | None = None
    outcome: ReviewOutcome | None = None
    plan: Plan | None = None
    review_id: int | None = None
    posted: int = 0  # inline comments sent in the review
    duplicates: int = 0  # comments not sent: already on the PR
    demoted: int = 0  # comments moved to the summary after a 422
    reused: int = 0  # hunks not sent again: reviewed at an earlier head, unchanged
    summary_id: int | None = None
    summary_written: bool = False
    summary_body: str | None = None
    review_payload: ReviewPayload | None = None  # what was (or, dry run, would be) sent
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the run reviewed nothing
    github_failure: GitHubFailure | None = None


@dataclass(frozen=True)
class _Prior:
    """What earlier runs left on the PR, from depthgate's own comments only."""

    summary: ExistingComment | None
    state: SummaryState | None
    posted: frozenset[str]  # fingerprints already on the PR


def _prior(client: PullRequestPort, authors: frozenset[str] | None) -> _Prior:
    mine = _trusted(client.issue_comments(), authors)
    summary = next((c for c in mine if parse_state(c.body) is not None), None)
    state = parse_state(summary.body) if summary else None
    posted = fingerprints_in(c.body for c in _trusted(client.review_comments(), authors))
    if state is not None:
        posted |= state.fingerprints
    return _Prior(summary, state, posted)


def _read_code(
    run: PrRun,
    options: PrReviewOptions,
    info: PullRequestInfo,
    diff: Diff,
    loaded: LoadedConfig,
) -> tuple[Sources, LoadedConfig]:
    """The changed files (the source port), and the guideline files where they come with them."""
    sources = options.sources(info, diff) if options.sources is not None else DIFF_ONLY
    run.notes.extend(sources.notes)
    if options.guidelines is not None:
        found, warnings = options.guidelines()
        loaded = replace(loaded, guidelines=tuple(found))
        run.notes.extend(warnings)
    return sources, loaded


async def review_pull_request(
    client: PullRequestPort, loaded: LoadedConfig, gateway: Gateway, options: PrReviewOptions
) -> PrRun:
    run = PrRun()
    try:
        await _review(run, client, loaded, gateway, options)
    except GitHubFailure as exc:
        run.github_failure = exc
    return run


async def _review(
    run: PrRun,
    client: PullRequestPort,
    loaded: LoadedConfig,
    gateway: Gateway,
    options: PrReviewOptions,
) -> None:
    run.notes.extend(loaded.warnings)  # what the repository's config set and was not used
    info = run.pr = client.info()
    if info.state != "open":
        run.skipped = f"PR #{info.number} is {info.state}"
        return
    diff = parse_github_files(client.files())
    prior = _prior(client, options.trusted_authors)
    state = prior.state
    run.summary_id = prior.summary.id if prior.summary else None

    earlier = (
        state.reviewed(hunk_key(h) for h in diff.hunks)
        if state and not options.full
        else frozenset()
    )
    sources, loaded = _read_code(run, options, info, diff, loaded)
    plan = build_plan(
        diff,
        loaded,
        reviewed=earlier,
        reviewed_at=state.head_sha if state else "",
        sources=sources,
        pr=PullRequestText(info.title, info.body),
    )
    run.plan = plan
    run.reused = sum(1 for d in plan.classification.decisions if d.skip == UNCHANGED)
    if not plan.tasks and state is not None:
        run.skipped = (
            f"nothing new to review at {info.head_sha[:12]}: {run.reused} hunks were reviewed "
            f"at {state.head_sha[:12]} and have not changed"
        )
        if prior.summary and state.head_sha != info.head_sha and not options.dry_run:
            # the visible summary still holds; only the marker learns the new head
            moved = replace(state, head_sha=info.head_sha, hunks=earlier)
            client.edit_comment(prior.summary.id, with_state(prior.summary.body, moved))
            run.summary_written = True
        return

    review_options = replace(options.review, pr=PullRequestText(info.title, info.body))
    outcome = await review(plan, gateway, review_options)
    run.outcome = outcome
    counts = outcome.counts()
    if counts["failed"] and not counts["reviewed"]:
        run.skipped = "no hunk could be reviewed: nothing is posted (see the handoff note)"
        return
    if run.reused:
        run.notes.append(
            f"{plural(run.reused, 'hunk')} unchanged since {state.head_sha[:12] if state else '?'} "
            "were "
            f"not reviewed again; their comments from that review stay on the PR."
        )
    payload = review_payload(
        outcome.comments,
        head_sha=info.head_sha,
        body=_review_body(outcome, info.head_sha),
        existing_fingerprints=prior.posted,
    )
    run.duplicates = payload.duplicates
    if payload.duplicates:
        already = plural(payload.duplicates, "finding")
        run.notes.append(f"{already} already on the PR; not posted again.")
    run.review_payload = payload
    if options.dry_run:
        return
    if options.proceed is not None and not options.proceed():
        run.skipped = "superseded by a newer push before posting; nothing was posted"
        return

    sent: list[Comment] = []
    if payload.comments:
        now = client.info()
        if now.head_sha != info.head_sha:
            run.notes.append(
                f"The PR moved to {now.head_sha[:12]} during the review; the comments are on "
                f"{info.head_sha[:12]}, the commit that was reviewed."
            )
        sent = _post(client, run, payload, diff=plan.diff, outcome=outcome)

    reviewed_keys = {
        hunk_key(d.hunk)
        for d, h in zip(plan.classification.decisions, outcome.hunks, strict=True)
        if h.state == "reviewed"
    }
    new_state = SummaryState(
        head_sha=info.head_sha,
        fingerprints=prior.posted | {c.fingerprint for c in sent},
        hunks=frozenset(earlier | reviewed_keys),
    )
    reused_paths = {d.hunk.path for d in plan.classification.decisions if d.skip == UNCHANGED}
    carried = (
        earlier_findings(prior.summary.body, reused_paths, state.head_sha)
        if prior.summary is not None and state is not None
        else []
    )
    _write_summary(
        client,
        run,
        prior.summary,
        outcome=outcome,
        state=new_state,
        options=options,
        earlier=carried,
    )


def _write_summary(
    client: PullRequestPort,
    run: PrRun,
    existing: ExistingComment | None,
    *,
    outcome: ReviewOutcome,
    state: SummaryState,
    options: PrReviewOptions,
    earlier: Sequence[str] = (),
) -> None:
    body = render_summary(
        outcome,
        state,
        title=options.title,
        notes=run.notes,
        policy=options.review.sanitize,
        earlier=earlier,
    )
    run.summary_body = body
    if existing is None:
        run.summary_id = client.create_comment(body)
        run.summary_written = True
    elif existing.body != body:
        client.edit_comment(existing.id, body)
        run.summary_written = True


def summary_markdown(run: PrRun, policy: SanitizePolicy) -> str:
    """The summary as posted, or -- when it was not posted (dry run, GitHub refused, a partial
    review with nothing to post) -- as it would have been. ``run.outcome`` must be set."""
    assert run.outcome is not None
    if run.summary_body:
        return run.summary_body
    head = run.pr.head_sha if run.pr else ""
    return render_summary(run.outcome, SummaryState(head), notes=run.notes, policy=policy)


def _post(
    client: PullRequestPort,
    run: PrRun,
    payload: ReviewPayload,
    *,
    diff: Diff,
    outcome: ReviewOutcome,
) -> list[Comment]:
    """Send the review; after a 422, re-check against the PR as it is now and send what still
    holds once more, against the new head. Returns the comments that were posted."""
    fresh = list(payload.comments)
    try:
        run.review_id = client.create_review(payload)
        run.posted = len(fresh)
        return fresh
    except GitHubFailure as exc:
        if exc.error_class is not GitHubErrorClass.UNPROCESSABLE:
            raise
        first_error = "; ".join(exc.errors) or exc.message
    now = client.info()
    current = parse_github_files(client.files())
    keep = [c for c in fresh if _still_valid(c, diff, current)]
    dropped = [c for c in fresh if c not in keep]
    _demote(outcome, dropped, "rejected_by_github")
    run.demoted = len(dropped)
    note = f"GitHub refused the review ({first_error})"
    if keep:
        retry = review_payload(keep, head_sha=now.head_sha, body=payload.body)
        try:
            run.review_id = client.create_review(retry)
        except GitHubFailure as exc:
            if exc.error_class is not GitHubErrorClass.UNPROCESSABLE:
                raise
            _demote(outcome, keep, "rejected_by_github")
            run.demoted += len(keep)
            run.notes.append(f"{note}, twice; all {len(fresh)} comments are listed below.")
            return []
        run.posted = len(keep)
        run.notes.append(
            f"{note}; {len(keep)} comments still valid at {now.head_sha[:12]} were posted there, "
            f"{len(dropped)} are listed below."
        )
        return keep
    run.notes.append(f"{note}; its {len(fresh)} comments are listed below.")
    return []


def _still_valid(c: Comment, reviewed: Diff, current: Diff) -> bool:
    """The comment's lines exist in the current diff, in one hunk, with the same text."""
    side = Side(c.side)
    lines = [c.line] if c.start_line is None else [c.start_line, c.line]
    hunks = set()
    for number in lines:
        anchor = Anchor(c.path, side, number)
        old, new = reviewed.anchors.get(anchor), current.anchors.get(anchor)
        if new is None or old is None or old.line_text(side, number) != new.line_text(side, number):
            return False
        hunks.add(id(new))
    return len(hunks) == 1


def _demote(outcome: ReviewOutcome, comments: Collection[Comment], reason: str) -> None:
    for c in comments:
        finding = Finding.model_validate(
            {
                "path": c.path,
                "line": c.line,
                "side": c.side,
                "severity": c.severity,
                "category": c.category,
                "title": c.title or f"{c.category} finding",
                "body": c.body[:8000],
            }
        )
        outcome.summary_only.append(SummaryOnly(finding, reason, c.provenance))


def _trusted(
    comments: Sequence[ExistingComment], authors: frozenset[str] | None
) -> list[ExistingComment]:
    return [c for c in comments if authors is None or c.author in authors]


def _review_body(outcome: ReviewOutcome, head: str) -> str:
    c = outcome.counts()
    text = (
        f"depthgate reviewed {c['reviewed']} of {c['total']} hunks at {head[:12]}; "
        f"the summary comment has the routing table and everything not placed inline."
    )
    if c["failed"]:
        text = f"**Partial review: {c['reviewed']}/{c['total']} hunks.** " + text
    return text
