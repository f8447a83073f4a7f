"""Progress while the review runs: one line per gateway task as it is sent and as it ends
(alias, tier, hunks, status, latency), so a run is never silent for the minutes real models
take. The pipeline calls the port (:class:`depthgate.core.ports.TaskProgress`); this module
only renders it -- to stderr from the CLI, inside a ``::group::`` in Actions; the App logs the
same line at INFO."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from depthgate.core.ports import TaskProgress
from depthgate.core.wording import plural

Progress = Callable[[TaskProgress], None]


def progress_line(p: TaskProgress) -> str:
    head = f"depthgate: {p.task_id} -> {p.alias} ({p.tier}, {plural(p.hunks, 'hunk')})"
    if p.status == "sent":
        return f"{head}: sent"
    if p.status == "reviewed":
        took = f" in {p.latency_ms / 1000:.1f} s" if p.latency_ms is not None else ""
        found = f", {plural(p.findings, 'finding')}" if p.findings is not None else ""
        served = f", served by {p.served_by}" if p.served_by and p.served_by != p.alias else ""
        return f"{head}: reviewed{took}{found}{served}"
    if p.status == "failed":
        return f"{head}: failed ({p.error_class}) after {plural(p.calls, 'call')}"
    return f"{head}: not sent (the run stopped on {p.error_class})"


def to_stream(stream: TextIO) -> Progress:
    def tell(p: TaskProgress) -> None:
        stream.write(progress_line(p) + "\n")
        stream.flush()

    return tell
