"""``depthgate reconcile``: find the App's recent deliveries that never got a 2xx answer and ask
GitHub to deliver them again (GitHub never retries a failed delivery by itself).

A delivery id (``guid``) counts as failed when none of its attempts was answered with a 2xx;
each failed guid is redelivered once per run, newest attempt first. Redelivered deliveries keep
their ``X-GitHub-Delivery``, so one that did get through in the meantime is a duplicate and
queues nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from depthgate.app.auth import AppAuthenticator
from depthgate.app.errors import AppAuthError

_NEXT = re.compile(r'<[^>]*[?&]cursor=([^&>]+)[^>]*>;\s*rel="next"')


@dataclass
class ReconcileReport:
    checked: int = 0  # delivery attempts looked at
    failed: list[str] = field(default_factory=list)  # guids never answered with a 2xx
    redelivered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "failed": self.failed,
            "redelivered": self.redelivered,
            "errors": self.errors,
        }


def _when(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def reconcile(
    auth: AppAuthenticator,
    *,
    since: float,
    dry_run: bool = False,
    max_pages: int = 10,
    max_redeliveries: int = 100,
    seen: Callable[[str], bool] | None = None,
) -> ReconcileReport:
    """``since`` is a Unix time; ``seen(guid)`` (the job store) skips deliveries this server
    already recorded even though GitHub saw no 2xx (an answer that arrived too late)."""
    report = ReconcileReport()
    attempts: dict[str, list[dict[str, Any]]] = {}
    cursor: str | None = None
    for _ in range(max_pages):
        params = {"per_page": "100", **({"cursor": cursor} if cursor else {})}
        headers, page = auth.app_request("GET", "/app/hook/deliveries", params=params)
        if not isinstance(page, list) or not page:
            break
        older = False
        for item in page:
            if _when(str(item.get("delivered_at", ""))) < since:
                older = True
                continue
            report.checked += 1
            attempts.setdefault(str(item.get("guid")), []).append(item)
        match = _NEXT.search(headers.get("link", "") or "")
        if older or match is None:
            break
        cursor = match.group(1)
    for guid, tries in attempts.items():
        if any(200 <= int(t.get("status_code") or 0) < 300 for t in tries):
            continue
        if seen is not None and seen(guid):
            continue
        report.failed.append(guid)
        if dry_run or len(report.redelivered) >= max_redeliveries:
            continue
        newest = max(tries, key=lambda t: _when(str(t.get("delivered_at", ""))))
        try:
            auth.app_request("POST", f"/app/hook/deliveries/{newest['id']}/attempts")
        except AppAuthError as exc:
            report.errors.append(f"{guid}: {exc.message}")
            continue
        report.redelivered.append(guid)
    return report


def render_text(report: ReconcileReport, *, dry_run: bool) -> str:
    lines = [
        f"{report.checked} delivery attempt(s) checked, {len(report.failed)} delivery(ies) "
        f"never answered with a 2xx"
    ]
    verb = "would redeliver" if dry_run else "redelivered"
    targets = report.failed if dry_run else report.redelivered
    lines += [f"  {verb} {guid}" for guid in targets]
    lines += [f"  error: {e}" for e in report.errors]
    return "\n".join(lines) + "\n"
