"""Worker processes: killed mid-job (before and after posting), two workers on Redis under a
burst of 100 PR events, and 20 concurrent copies of one delivery over HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from depthgate.app import App
from depthgate.app.jobs import JobState, job_spec
from depthgate.app.metrics import Metrics
from depthgate.app.queue import Queue
from depthgate.app.server import create_app
from depthgate.app.settings import AppSettings
from depthgate.app.surface import REVIEW_EVENTS
from tests.app import recording
from tests.app.harness import Harness
from tests.app.helpers import LiveServer, body_of, headers, pr_payload, wait_for, worker


def _deliver(queue: Queue, payload: dict[str, object], delivery: str) -> str:
    spec = job_spec("pull_request", delivery, payload)
    return queue.accept(spec, json.dumps(payload).encode(), time.time()).value


@pytest.mark.parametrize("moment", ["after_post", "before_post"])
def test_a_worker_killed_mid_job(settings: AppSettings, tmp_path: Path, moment: str) -> None:
    queue = Queue(settings)
    posts = tmp_path / "posts.db"
    key = "i11:r1001:pr7:" + "a" * 40
    try:
        assert _deliver(queue, pr_payload(), "d-1") == "queued"
        with worker(settings, tmp_path, DG_TEST_CRASH=moment) as first:
            wait_for("the first attempt to stall", (tmp_path / "flag").exists)
            first.kill()  # SIGKILL: no cleanup, no acknowledgement
            first.wait(timeout=10)
        assert (tmp_path / "flag").read_text() == moment
        with worker(settings, tmp_path, DG_TEST_CRASH=moment):

            def done() -> bool:
                record = queue.store.record(key)
                return record is not None and record.state == JobState.DONE

            wait_for("the job to be run again and finish", done)
        assert recording.post_counts(posts) == {"octo/repo#7@" + "a" * 40: 1}
        assert recording.run_count(posts) == 2
    finally:
        queue.close()


def test_two_redis_workers_handle_a_burst_of_100_pr_events(
    settings: AppSettings, redis_db: str, tmp_path: Path
) -> None:
    s = replace(settings, queue_url=redis_db)
    app = App()
    recording.register(app)
    queue = Queue(s)
    posts = tmp_path / "posts.db"
    payloads = [pr_payload(number=n, head=f"{n:040x}") for n in range(1, 101)]
    try:
        with (
            worker(s, tmp_path) as w1,
            worker(s, tmp_path) as w2,
            LiveServer(create_app(app, queue, s, Metrics())) as live,
            httpx.Client(base_url=live.url, timeout=30) as client,
        ):

            def send(i: int) -> int:
                body = body_of(payloads[i % 100])
                # every 5th event is delivered twice (a redelivery): 120 requests in all
                r = client.post(
                    "/webhook", content=body, headers=headers(body, delivery=f"d{i % 100}")
                )
                return r.status_code

            order = list(range(100)) + list(range(0, 100, 5))
            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(send, order))
            assert statuses == [202] * len(order)
            wait_for("100 posts", lambda: len(recording.post_counts(posts)) == 100, 60)
            wait_for("an empty queue", lambda: queue.store.active_count() == 0, 30)
            assert w1.poll() is None
            assert w2.poll() is None
        counts = recording.post_counts(posts)
        assert len(counts) == 100
        assert set(counts.values()) == {1}
        assert recording.run_count(posts) == 100
    finally:
        queue.close()


def test_twenty_concurrent_copies_of_one_delivery_are_one_job_and_one_review(
    settings: AppSettings, tmp_path: Path
) -> None:
    app = App()
    rec: list[str] = []
    app.on(*REVIEW_EVENTS)(lambda ctx: rec.append(ctx.job.key))
    h = Harness(settings, app)
    body = body_of(pr_payload())
    hdrs = headers(body, delivery="one-delivery")
    try:
        with (
            LiveServer(create_app(app, h.queue, settings, h.metrics)) as live,
            httpx.Client(base_url=live.url, timeout=30) as client,
            ThreadPoolExecutor(max_workers=20) as pool,
        ):
            answers = list(
                pool.map(lambda _: client.post("/webhook", content=body, headers=hdrs), range(20))
            )
        outcomes = sorted(r.json()["outcome"] for r in answers)
        assert outcomes == ["duplicate"] * 19 + ["queued"]
        h.drain()
        assert len(rec) == 1
    finally:
        h.close()
