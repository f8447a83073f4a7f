"""A handler module for the app's tests (``--handlers tests.app.recording``): it "posts" into a
SQLite file (``DG_TEST_POSTS``) once per (repository, PR, head) marker -- the way the review finds
its own sticky summary -- and can stall on its first attempt, before or after posting
(``DG_TEST_CRASH=before_post|after_post``), touching ``DG_TEST_FLAG`` so that a test can kill it.
The config comes from the server (no GitHub)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from depthgate.app import App, Context, JobResult, ReviewJob
from depthgate.configfile import load_config
from depthgate.core.routes import LoadedConfig

STALL_S = 60.0  # bounded: the test kills the worker long before


def _posts(path: str | Path | None = None) -> sqlite3.Connection:
    db = sqlite3.connect(path or os.environ["DG_TEST_POSTS"], timeout=30)
    db.execute(
        "create table if not exists posts (marker text primary key, attempt integer, pid integer)"
    )
    db.execute("create table if not exists runs (marker text, attempt integer, pid integer)")
    return db


def post_counts(path: Path) -> dict[str, int]:
    with closing(_posts(path)) as db:
        return dict(db.execute("select marker, count(*) from posts group by marker").fetchall())


def run_count(path: Path) -> int:
    with closing(_posts(path)) as db:
        return int(db.execute("select count(*) from runs").fetchone()[0])


def _stall(flag: str) -> None:
    Path(os.environ["DG_TEST_FLAG"]).write_text(flag)
    time.sleep(STALL_S)


def review(ctx: Context) -> JobResult:
    crash = os.environ.get("DG_TEST_CRASH", "")
    marker = f"{ctx.job.repository}#{ctx.job.pr_number}@{ctx.job.head_sha}"
    db = _posts()
    try:
        with db:
            db.execute("insert into runs values (?, ?, ?)", (marker, ctx.job.attempt, os.getpid()))
        if crash == "before_post" and ctx.job.attempt == 1:
            _stall("before_post")
        with db:
            if db.execute("select 1 from posts where marker = ?", (marker,)).fetchone() is None:
                db.execute(
                    "insert into posts values (?, ?, ?)", (marker, ctx.job.attempt, os.getpid())
                )
        if crash == "after_post" and ctx.job.attempt == 1:
            _stall("after_post")
    finally:
        db.close()
    return JobResult("success", f"posted {marker}")


def server_config(job: ReviewJob, github: Callable[[], Any]) -> LoadedConfig:
    return load_config(None)


def register(app: App) -> None:
    app.config_loader = server_config
    app.on("pull_request.opened", "pull_request.synchronize", "pull_request.reopened")(review)
