"""stamina's retry instrumentation, routed to logging.

stamina's default hooks log a bare ``stamina.retry_scheduled`` at WARNING; with no logging
configured (the CLI, the Action) Python's last-resort handler prints that line to stderr, in the
middle of the handoff Markdown. One readable INFO record on ``depthgate.retry`` replaces it: the
App's log shows it, a CLI run shows nothing the user did not ask for. The Prometheus hook goes
too: the App keeps its own gateway metrics in its own registry.
"""

from __future__ import annotations

import logging

import stamina.instrumentation

log = logging.getLogger("depthgate.retry")


def _log_retry(details: stamina.instrumentation.RetryDetails) -> None:
    cause = details.caused_by
    # the error class, not the message: a message may quote a URL the handoff redacts
    what = getattr(getattr(cause, "error_class", None), "value", None) or type(cause).__name__
    log.info(
        "%s: attempt %d in %.1f s after %s (%.1f s waited so far)",
        details.name,
        details.retry_num + 1,
        details.wait_for,
        what,
        details.waited_so_far,
    )


def route_retries_to_logging() -> None:
    """Idempotent; called by the adapters that retry, before their first call."""
    stamina.instrumentation.set_on_retry_hooks([_log_retry])
