"""The job store: deliveries seen, the latest head of each PR, and each job's state and lease.

It lives in the queue's own backend, so that recording a delivery, creating or updating its job
and putting the job's message on the queue are one atomic, durable step: one SQLite
transaction in the file huey uses (embedded mode), or one Lua script in Redis (scale-out).

The store is the truth and queue messages are only hints ("job K may be runnable"): a worker
claims a job atomically (``queued`` → ``running``), so a duplicate message runs nothing, and
the reaper re-queues a job whose worker died (lease expired) or whose message was lost.

    queued ──claim──▶ running ──finish──▶ done | failed
       ▲                 │ retry_later (backoff)  │ lease expired (reaper)
       └─────────────────┴────────────────────────┘
    queued ──claim, a newer head exists──▶ superseded
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from huey.storage import SqliteStorage

from depthgate.app.jobs import Accepted, Claim, JobRecord, JobSpec, JobState, Skip

_DDL = (
    "create table if not exists dg_delivery (id text primary key, job_key text not null, "
    "received_at real not null)",
    "create table if not exists dg_pr (pr_key text primary key, head_sha text not null, "
    "updated_at text not null)",
    "create table if not exists dg_job (key text primary key, pr_key text, state text not null, "
    "attempts integer not null default 0, lease_until real not null default 0, token text, "
    "spec text not null, payload blob not null, reviewed_config_hash text, conclusion text, "
    "error text, updated real not null)",
    "create index if not exists dg_job_active on dg_job (state, lease_until)",
)


class JobStore(Protocol):
    def accept(self, spec: JobSpec, payload: bytes, message: bytes, now: float) -> Accepted: ...

    def claim(self, key: str, now: float, lease_s: float) -> Claim | Skip: ...

    def heartbeat(self, key: str, token: str, until: float) -> bool: ...

    def finish(
        self,
        key: str,
        token: str,
        state: JobState,
        *,
        now: float,
        conclusion: str | None = None,
        error: str | None = None,
        config_hash: str | None = None,
    ) -> bool: ...

    def retry_later(self, key: str, token: str, due: float, error: str) -> bool: ...

    def reap(self, now: float, stale_s: float) -> list[str]:
        """Re-queue running jobs whose lease expired and queued jobs nobody claimed within
        ``stale_s``; returns their keys (each needs a new queue message)."""
        ...

    def is_current(self, spec: JobSpec) -> bool: ...

    def record(self, key: str) -> JobRecord | None: ...

    def delivery_seen(self, delivery_id: str) -> bool: ...

    def active_count(self) -> int: ...

    def ping(self) -> None: ...


def new_token() -> str:
    return secrets.token_hex(8)


class SqliteJobStore:
    """The store in huey's SQLite file, through huey's own connection (one lock, one file).

    Durability: a delivery and its job are committed with ``synchronous=FULL`` -- on disk
    before the webhook answers 202, even if the machine loses power. Everything after (huey's
    dequeue, claim, finish, cleanup) commits with ``synchronous=NORMAL``: in WAL mode that
    survives a crash of the process, and the next FULL commit makes it durable too; only a power
    loss can roll back the last of those steps, which at worst runs a job again -- and a review
    run again posts nothing twice (the posting marker). Four fsyncs fewer per delivery: with
    every commit fsync'd, the serialized commits were what held ``depthgate serve`` back under
    load (bench/webhook_load.py).
    """

    def __init__(self, storage: SqliteStorage) -> None:
        self.storage = storage
        with storage.db(commit=True) as cur:
            for sql in _DDL:
                cur.execute(sql)
        with storage.lock:
            storage.conn.execute("pragma synchronous=NORMAL")

    @contextmanager
    def _durable(self) -> Iterator[sqlite3.Cursor]:
        """huey's ``storage.db(commit=True)``, with this one transaction fsync'd."""
        storage = self.storage
        with storage.lock:
            conn = storage.conn
            conn.execute("pragma synchronous=FULL")
            cur = conn.cursor()
            try:
                cur.execute(storage.begin_sql)
                yield cur
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()
            finally:
                cur.close()
                conn.execute("pragma synchronous=NORMAL")

    def accept(self, spec: JobSpec, payload: bytes, message: bytes, now: float) -> Accepted:
        with self._durable() as cur:
            cur.execute(
                "insert or ignore into dg_delivery (id, job_key, received_at) values (?, ?, ?)",
                (spec.delivery_id, spec.key, now),
            )
            if cur.rowcount == 0:
                # A redelivery. Its job is queued again only if it failed for good (the
                # operator's "Redeliver" is how a failed review is retried).
                cur.execute(
                    "select d.job_key, j.state from dg_delivery d left join dg_job j "
                    "on j.key = d.job_key where d.id = ?",
                    (spec.delivery_id,),
                )
                key, state = cur.fetchone()
                if state != JobState.FAILED:
                    return Accepted.DUPLICATE
                self._queue(cur, key, now, message)
                return Accepted.REQUEUED
            if spec.pr_key is not None:
                cur.execute(
                    "insert into dg_pr (pr_key, head_sha, updated_at) values (?, ?, ?) "
                    "on conflict (pr_key) do update set head_sha = excluded.head_sha, "
                    "updated_at = excluded.updated_at "
                    "where excluded.updated_at >= dg_pr.updated_at",
                    (spec.pr_key, spec.head_sha, spec.updated_at),
                )
            cur.execute("select state from dg_job where key = ?", (spec.key,))
            row = cur.fetchone()
            if row is not None and row[0] in (JobState.QUEUED, JobState.RUNNING):
                return Accepted.COLLAPSED
            if row is None:
                cur.execute(
                    "insert into dg_job (key, pr_key, state, spec, payload, updated) "
                    "values (?, ?, ?, ?, ?, ?)",
                    (spec.key, spec.pr_key, JobState.QUEUED, spec.to_json(), payload, now),
                )
            else:
                cur.execute(
                    "update dg_job set spec = ?, payload = ? where key = ?",
                    (spec.to_json(), payload, spec.key),
                )
            self._queue(cur, spec.key, now, message)
            return Accepted.QUEUED

    def _queue(self, cur: sqlite3.Cursor, key: str, now: float, message: bytes) -> None:
        # a queued job's lease_until is when it became due: the reaper re-queues it stale_s later
        cur.execute(
            "update dg_job set state = ?, token = null, error = null, updated = ?, "
            "lease_until = ?, attempts = 0 where key = ?",
            (JobState.QUEUED, now, now, key),
        )
        # huey's own table: the message becomes visible to workers with this commit
        cur.execute(
            "insert into task (queue, data, priority) values (?, ?, 0)",
            (self.storage.name, message),
        )

    def claim(self, key: str, now: float, lease_s: float) -> Claim | Skip:
        with self.storage.db(commit=True) as cur:
            cur.execute(
                "select state, attempts, spec, payload, reviewed_config_hash, pr_key "
                "from dg_job where key = ?",
                (key,),
            )
            row = cur.fetchone()
            if row is None:
                return Skip("unknown job")
            state, attempts, spec_json, payload, reviewed, pr_key = row
            if state != JobState.QUEUED:
                return Skip(f"job is {state}")
            spec = JobSpec.from_json(spec_json)
            if pr_key is not None:
                cur.execute("select head_sha from dg_pr where pr_key = ?", (pr_key,))
                head = cur.fetchone()
                if head is not None and head[0] != spec.head_sha:
                    cur.execute(
                        "update dg_job set state = ?, updated = ? where key = ?",
                        (JobState.SUPERSEDED, now, key),
                    )
                    return Skip("superseded")
            token = new_token()
            cur.execute(
                "update dg_job set state = ?, attempts = attempts + 1, token = ?, "
                "lease_until = ?, updated = ? where key = ?",
                (JobState.RUNNING, token, now + lease_s, now, key),
            )
            return Claim(spec, bytes(payload), attempts + 1, token, reviewed)

    def heartbeat(self, key: str, token: str, until: float) -> bool:
        with self.storage.db(commit=True) as cur:
            cur.execute(
                "update dg_job set lease_until = ? where key = ? and token = ? and state = ?",
                (until, key, token, JobState.RUNNING),
            )
            return bool(cur.rowcount == 1)

    def finish(
        self,
        key: str,
        token: str,
        state: JobState,
        *,
        now: float,
        conclusion: str | None = None,
        error: str | None = None,
        config_hash: str | None = None,
    ) -> bool:
        with self.storage.db(commit=True) as cur:
            cur.execute(
                "update dg_job set state = ?, conclusion = ?, error = ?, token = null, "
                "reviewed_config_hash = coalesce(?, reviewed_config_hash), updated = ? "
                "where key = ? and token = ?",
                (state, conclusion, error, config_hash, now, key, token),
            )
            return bool(cur.rowcount == 1)

    def retry_later(self, key: str, token: str, due: float, error: str) -> bool:
        with self.storage.db(commit=True) as cur:
            cur.execute(
                "update dg_job set state = ?, token = null, lease_until = ?, error = ? "
                "where key = ? and token = ?",
                (JobState.QUEUED, due, error, key, token),
            )
            return bool(cur.rowcount == 1)

    def reap(self, now: float, stale_s: float) -> list[str]:
        with self.storage.db(commit=True) as cur:
            cur.execute(
                "select key from dg_job where (state = ? and lease_until < ?) "
                "or (state = ? and lease_until < ?)",
                (JobState.RUNNING, now, JobState.QUEUED, now - stale_s),
            )
            keys = [r[0] for r in cur.fetchall()]
            for key in keys:
                cur.execute(
                    "update dg_job set state = ?, token = null, lease_until = ? where key = ?",
                    (JobState.QUEUED, now, key),
                )
        return keys

    def is_current(self, spec: JobSpec) -> bool:
        if spec.pr_key is None:
            return True
        rows = self.storage.sql(
            "select head_sha from dg_pr where pr_key = ?", (spec.pr_key,), results=True
        )
        return not rows or rows[0][0] == spec.head_sha

    def record(self, key: str) -> JobRecord | None:
        rows = self.storage.sql(
            "select state, attempts, conclusion, error, reviewed_config_hash from dg_job "
            "where key = ?",
            (key,),
            results=True,
        )
        if not rows:
            return None
        state, attempts, conclusion, error, reviewed = rows[0]
        return JobRecord(key, JobState(state), attempts, conclusion, error, reviewed)

    def delivery_seen(self, delivery_id: str) -> bool:
        return bool(
            self.storage.sql("select 1 from dg_delivery where id = ?", (delivery_id,), results=True)
        )

    def active_count(self) -> int:
        rows: list[Any] = self.storage.sql(
            "select count(*) from dg_job where state in (?, ?)",
            (JobState.QUEUED, JobState.RUNNING),
            results=True,
        )
        return int(rows[0][0])

    def ping(self) -> None:
        self.storage.sql("select 1", results=True)
