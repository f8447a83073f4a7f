"""Jobs: keys collapse duplicates, a newer head supersedes, bounded retries with switchable
backoff, failures that are visible, a dead worker's job runs again -- on SQLite and on Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from depthgate.app import App, Context, JobResult
from depthgate.app.jobs import JobState
from depthgate.app.settings import AppSettings, RetryPolicy
from depthgate.app.surface import REVIEW_EVENTS
from depthgate.core.errors import ConfigError
from tests.app.harness import Harness, Recorder
from tests.app.helpers import pr_payload

A, B = "a" * 40, "b" * 40


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, settings: AppSettings) -> AppSettings:
    if request.param == "redis":
        return replace(settings, queue_url=request.getfixturevalue("redis_db"))
    return settings


def make(settings: AppSettings, handler: Any, **kw: Any) -> Harness:
    app = App()
    app.on(*REVIEW_EVENTS)(handler)
    return Harness(settings, app, **kw)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def h(backend: AppSettings, rec: Recorder) -> Iterator[Harness]:
    harness = make(backend, rec)
    yield harness
    harness.close()


def key(head: str = A, number: int = 7) -> str:
    return f"i11:r1001:pr{number}:{head}"


def test_one_delivery_one_run(h: Harness, rec: Recorder) -> None:
    assert h.deliver() == "queued"
    assert h.drain() == [key()]
    assert len(rec.calls) == 1
    ctx = rec.calls[0]
    assert (ctx.job.installation_id, ctx.job.repository, ctx.job.pr_number) == (
        11,
        "octo/repo",
        7,
    )
    assert ctx.job.head_sha == A
    assert ctx.job.config_hash == h.config.sha256
    assert ctx.job.attempt == 1
    assert ctx.repo() == ("octo", "repo")
    assert ctx.pull_request() == ("octo", "repo", 7)
    assert ctx.payload["pull_request"]["number"] == 7
    record = h.queue.store.record(key())
    assert record is not None
    assert (record.state, record.conclusion) == (JobState.DONE, "success")


def test_the_same_delivery_twenty_times_is_one_job(h: Harness, rec: Recorder) -> None:
    outcomes = [h.deliver(delivery="same") for _ in range(20)]
    assert outcomes.count("queued") == 1
    assert outcomes.count("duplicate") == 19
    h.drain()
    assert len(rec.calls) == 1


def test_the_same_head_under_a_new_delivery_id_is_still_one_review(
    h: Harness, rec: Recorder
) -> None:
    assert h.deliver() == "queued"
    assert h.deliver(pr_payload(action="reopened")) == "collapsed"  # still queued
    h.drain()
    assert h.deliver(pr_payload(action="reopened")) == "queued"  # after it ran: checked again
    h.drain()
    assert len(rec.calls) == 1  # the config did not change: already reviewed
    text = h.metrics.render().decode()
    assert 'depthgate_jobs_total{outcome="already_reviewed"} 1.0' in text


def test_a_config_change_reviews_the_same_head_again(h: Harness, rec: Recorder) -> None:
    h.deliver()
    h.drain()
    h.with_config_text("newrules")
    h.deliver(pr_payload(action="reopened"))
    h.drain()
    assert len(rec.calls) == 2


def test_a_newer_head_supersedes_an_older_queued_one(h: Harness, rec: Recorder) -> None:
    h.deliver(pr_payload(head=A, updated_at="2026-01-01T00:00:00Z"))
    h.deliver(pr_payload(head=B, action="synchronize", updated_at="2026-01-01T00:01:00Z"))
    h.drain()
    assert [c.job.head_sha for c in rec.calls] == [B]
    old = h.queue.store.record(key(A))
    assert old is not None
    assert old.state == JobState.SUPERSEDED


def test_out_of_order_deliveries_keep_the_newest_head(h: Harness, rec: Recorder) -> None:
    h.deliver(pr_payload(head=B, action="synchronize", updated_at="2026-01-01T00:01:00Z"))
    h.deliver(pr_payload(head=A, updated_at="2026-01-01T00:00:00Z"))  # late, older
    h.drain()
    assert [c.job.head_sha for c in rec.calls] == [B]


def test_a_running_job_sees_that_it_was_superseded(backend: AppSettings) -> None:
    seen: list[bool] = []
    harness: Harness

    def handler(ctx: Context) -> JobResult:
        before = ctx.superseded()
        harness.deliver(pr_payload(head=B, action="synchronize", updated_at="2026-02-01T00:00:00Z"))
        seen.extend([before, ctx.superseded()])
        return JobResult("neutral", "stopped: superseded")

    harness = make(backend, handler)
    try:
        harness.deliver(pr_payload(head=A))
        harness.queue.huey.execute(harness.queue.huey.dequeue())
        assert seen == [False, True]
    finally:
        harness.close()


def test_other_prs_do_not_collapse(h: Harness, rec: Recorder) -> None:
    for n in range(1, 6):
        assert h.deliver(pr_payload(number=n)) == "queued"
    h.drain()
    assert sorted(c.job.pr_number or 0 for c in rec.calls) == [1, 2, 3, 4, 5]


def test_bounded_retries_then_success(backend: AppSettings) -> None:
    rec = Recorder(RuntimeError("gateway 503"), RuntimeError("gateway 503"), JobResult("success"))
    harness = make(backend, rec)
    try:
        harness.deliver()
        harness.drain()
        assert [c.job.attempt for c in rec.calls] == [1, 2, 3]
        record = harness.queue.store.record(key())
        assert record is not None
        assert record.state == JobState.DONE
    finally:
        harness.close()


def test_what_finally_fails_is_visible(
    backend: AppSettings, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(RuntimeError("gateway down"))
    app = App()
    app.on(*REVIEW_EVENTS)(rec)
    failures: list[tuple[Any, str]] = []
    app.on_failure(lambda ctx, job, error: failures.append((job, error)))
    harness = Harness(backend, app)
    try:
        harness.deliver()
        with caplog.at_level(logging.ERROR, logger="depthgate.app.queue"):
            harness.drain()
        assert len(rec.calls) == backend.retry.max_attempts
        record = harness.queue.store.record(key())
        assert record is not None
        assert (record.state, record.conclusion) == (JobState.FAILED, "failure")
        assert record.error is not None
        assert "gateway down" in record.error
        assert len(failures) == 1
        assert failures[0][0].pr_number == 7
        assert "gateway down" in failures[0][1]
        assert any("failed for good" in m and "redeliver" in m for m in caplog.messages)
        text = harness.metrics.render().decode()
        assert 'depthgate_jobs_total{outcome="failed"} 1.0' in text
        assert 'depthgate_jobs_total{outcome="retried"} 2.0' in text
        # the operator redelivers the delivery: the failed job is queued again
        assert harness.deliver(delivery="d-1") == "requeued"
    finally:
        harness.close()


def test_a_configuration_error_is_not_retried(backend: AppSettings) -> None:
    rec = Recorder(ConfigError(".github/gateway-routes.yaml: routes: expected a mapping"))
    harness = make(backend, rec)
    try:
        harness.deliver()
        harness.drain()
        assert len(rec.calls) == 1
        record = harness.queue.store.record(key())
        assert record is not None
        assert record.state == JobState.FAILED
    finally:
        harness.close()


def test_backoff_is_real_in_production_and_off_in_tests(settings: AppSettings) -> None:
    policy = RetryPolicy(max_attempts=5, base_s=10, cap_s=60)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 60]
    assert RetryPolicy(base_s=0).delay(3) == 0
    slow = replace(settings, retry=RetryPolicy(max_attempts=3, base_s=30))
    harness = make(slow, Recorder(RuntimeError("x")))
    try:
        harness.deliver()
        harness.drain()
        # the retry waits in huey's schedule, not in a sleeping thread
        assert harness.queue.ready_count() == 0
        assert harness.queue.scheduled_count() == 1
    finally:
        harness.close()


def test_a_dead_workers_job_is_run_again_by_the_reaper(h: Harness, rec: Recorder) -> None:
    h.deliver()
    task = h.queue.huey.dequeue()  # a worker took the message ...
    claim = h.queue.store.claim(task.args[0], h.clock(), h.settings.lease_s)
    assert not isinstance(claim, str)  # ... claimed the job, and died without finishing
    assert h.reaper.reap_once() == []  # its lease is still running
    h.clock.now += h.settings.lease_s + 1
    assert h.reaper.reap_once() == [key()]
    h.drain()
    assert [c.job.attempt for c in rec.calls] == [2]


def test_a_lost_message_is_queued_again(h: Harness, rec: Recorder) -> None:
    h.deliver()
    h.queue.huey.dequeue()  # taken, and the taker died before claiming
    h.clock.now += h.settings.stale_s + 1
    assert h.reaper.reap_once() == [key()]
    h.drain()
    assert len(rec.calls) == 1


def test_a_job_whose_worker_died_on_every_attempt_fails(backend: AppSettings) -> None:
    app = App()
    rec = Recorder()
    app.on(*REVIEW_EVENTS)(rec)
    failures: list[str] = []
    app.on_failure(lambda ctx, job, error: failures.append(error))
    h = Harness(backend, app)
    try:
        h.deliver()
        for _ in range(backend.retry.max_attempts):
            task = h.queue.huey.dequeue()
            h.queue.store.claim(task.args[0], h.clock(), backend.lease_s)
            h.clock.now += backend.lease_s + 1
            h.reaper.reap_once()
        h.drain()
        assert rec.calls == []
        assert failures == ["the worker running it stopped on every attempt"]
    finally:
        h.close()


def test_handlers_may_be_coroutines(settings: AppSettings) -> None:
    async def handler(ctx: Context) -> JobResult:
        return JobResult("neutral", "async")

    h = make(settings, handler)
    try:
        h.deliver()
        h.drain()
        record = h.queue.store.record(key())
        assert record is not None
        assert record.conclusion == "neutral"
    finally:
        h.close()


def test_app_surface() -> None:
    app = App()
    calls: list[str] = []

    @app.on("pull_request")
    def every(ctx: Context) -> None:
        calls.append("every")

    @app.on("pull_request.opened", "pull_request.reopened")
    def opened(ctx: Context) -> None:
        calls.append("opened")

    assert app.accepts("pull_request", "closed")
    assert app.handlers_for("pull_request.opened") == [every, opened]
    assert app.handlers_for("pull_request.closed") == [every]
    assert not App().accepts("pull_request", "opened")
    with pytest.raises(ValueError, match="event name"):
        app.on("pull_request..opened")
