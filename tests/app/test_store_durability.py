"""The SQLite store's durability contract: the delivery and its job are fsync'd before the 202
(synchronous=FULL); the job's later steps commit with synchronous=NORMAL (WAL: safe across a
process crash, and made durable by the next FULL commit)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from depthgate.app.jobs import job_spec
from depthgate.app.queue import Queue
from depthgate.app.settings import AppSettings
from depthgate.app.store import SqliteJobStore
from tests.app.helpers import pr_payload

FULL, NORMAL = 2, 1


def test_deliveries_are_fsynced_and_job_steps_are_not(settings: AppSettings) -> None:
    queue = Queue(settings)
    try:
        store = queue.store
        assert isinstance(store, SqliteJobStore)
        storage = store.storage

        def level() -> int:
            with storage.db() as cur:
                cur.execute("pragma synchronous")
                return int(cur.fetchone()[0])

        assert level() == NORMAL
        with store._durable() as cur:
            cur.execute("pragma synchronous")
            assert cur.fetchone()[0] == FULL
        assert level() == NORMAL
        payload = pr_payload()
        spec = job_spec("pull_request", "d-1", payload)
        assert queue.accept(spec, json.dumps(payload).encode(), time.time()).value == "queued"
        assert level() == NORMAL
        with storage.db() as cur:
            cur.execute("pragma journal_mode")
            assert cur.fetchone()[0] == "wal"
            cur.execute("select id from dg_delivery")
            assert cur.fetchall() == [("d-1",)]
    finally:
        queue.close()


def test_a_failed_transaction_rolls_back_and_restores_the_level(
    settings: AppSettings, tmp_path: Path
) -> None:
    queue = Queue(settings)
    try:
        store = queue.store
        assert isinstance(store, SqliteJobStore)

        def fail_midway() -> None:
            with store._durable() as cur:
                cur.execute(
                    "insert into dg_delivery (id, job_key, received_at) values ('x', 'k', 0)"
                )
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail_midway()
        with store.storage.db() as cur:
            cur.execute("select count(*) from dg_delivery")
            assert cur.fetchone()[0] == 0
            cur.execute("pragma synchronous")
            assert cur.fetchone()[0] == NORMAL
    finally:
        queue.close()
