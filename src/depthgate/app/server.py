"""The webhook server: an ASGI app (Starlette) with ``POST /webhook``, ``GET /healthz`` and
``GET /metrics`` (design §7, threats T11-T13).

``POST /webhook``, in this order: read the raw body under the 25 MB cap (413); verify
``X-Hub-Signature-256`` over those bytes against the current and the previous secret (401,
with a log line saying what to check) -- nothing is parsed or written before this; require the
event and delivery headers (400); ``ping`` → 200; a JSON body (415 for form-encoded, 400 for
invalid JSON); an event/action no handler subscribed to → 202 ignored; then the delivery, its
job and the job's queue message are written in one durable step and the answer is 202. A
failure of that step answers 500, so that GitHub marks the delivery failed and a redelivery (or
``depthgate reconcile``) brings it back.

Connections are bounded before this app runs (header size and count, header and body deadlines:
app/httpguard.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from depthgate.app.jobs import Ignored, job_spec
from depthgate.app.metrics import CONTENT_TYPE_LATEST, Metrics
from depthgate.app.queue import Queue
from depthgate.app.settings import AppSettings
from depthgate.app.signature import ADVICE, Verdict, verify
from depthgate.app.surface import App
from depthgate.core import jsonbound

log = logging.getLogger("depthgate.app.webhook")


class _TooLarge(Exception):
    pass


class _Busy(Exception):
    pass


class BodyBudget:
    """The request-body bytes all connections hold at once (the event loop's thread only: no
    lock). Each delivery's own cap bounds one body; this bounds a thousand slow ones together,
    which the connection cap alone let grow to 1,000 x 25 MB."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, n: int) -> None:
        if self.held + n > self.limit:
            raise _Busy
        self.held += n

    def give(self, n: int) -> None:
        self.held -= n


async def _read_capped(request: Request, cap: int, budget: BodyBudget) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise _TooLarge
            budget.take(len(chunk))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        budget.give(sum(len(c) for c in chunks))


@dataclass(frozen=True, slots=True)
class _Refusal:
    outcome: str
    status: int
    error: str


async def _read_body(
    request: Request, cap: int, budget: BodyBudget, delivery: str
) -> bytes | _Refusal:
    try:
        return await _read_capped(request, cap, budget)
    except ClientDisconnect:  # gone, or cut by the body deadline (app/httpguard.py)
        log.warning("delivery %s: the client went away before its body was read", delivery)
        return _Refusal("disconnected", 400, "incomplete body")
    except _TooLarge:
        log.warning("delivery %s refused: body over %d bytes", delivery or "?", cap)
        return _Refusal("too_large", 413, f"body over {cap} bytes")
    except _Busy:
        log.warning(
            "delivery %s refused: %d bytes of request bodies in flight already "
            "(DEPTHGATE_MAX_BODY_BYTES_IN_FLIGHT); GitHub's redelivery or `depthgate reconcile` "
            "sends it again",
            delivery or "?",
            budget.held,
        )
        return _Refusal("busy", 503, "too many request bodies in flight")


def _load_payload(body: bytes) -> Any:
    try:
        return jsonbound.loads(body)
    except jsonbound.JsonTooDeep as exc:
        raise ValueError(f"the body's JSON is {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the body is not JSON") from None


WRITER_THREADS = 4


def create_app(
    app: App,
    queue: Queue,
    settings: AppSettings,
    metrics: Metrics,
    *,
    missing: Callable[[], list[str]] = list,
) -> Starlette:
    """``missing``: what keeps the process from reviewing (the gateway settings, see
    :mod:`depthgate.app.preflight`), listed by ``/healthz``."""
    settings.require_webhook_secret()
    secrets = settings.webhook_secrets
    cap = settings.max_body_bytes
    # The store takes one write at a time anyway (huey's SQLite storage holds a lock around
    # every transaction): a few threads waiting for it, not the 40 of the default pool, keep
    # the GIL free for the event loop under load.
    writers = CapacityLimiter(WRITER_THREADS)
    budget = BodyBudget(settings.connections.max_body_bytes_in_flight)

    def answer(outcome: str, status: int, started: float, **body: Any) -> JSONResponse:
        metrics.deliveries.labels(outcome).inc()
        metrics.ack_seconds.observe(time.monotonic() - started)
        return JSONResponse({"outcome": outcome, **body}, status_code=status)

    async def webhook(request: Request) -> Response:
        started = time.monotonic()
        delivery = request.headers.get("x-github-delivery", "")
        event = request.headers.get("x-github-event", "")
        body = await _read_body(request, cap, budget, delivery)
        if isinstance(body, _Refusal):
            response = answer(body.outcome, body.status, started, error=body.error)
            if body.status == 503:
                response.headers["Retry-After"] = "5"
            return response
        verdict = verify(
            body,
            request.headers.get("x-hub-signature-256"),
            secrets,
            sha1_header=request.headers.get("x-hub-signature"),
        )
        if verdict is not Verdict.OK:
            log.warning(
                "delivery %s (event %s) refused, signature %s: %s",
                delivery or "?",
                event or "?",
                verdict.value,
                ADVICE[verdict],
            )
            return answer("bad_signature", 401, started, error=f"signature {verdict.value}")
        if not event:
            return answer("bad_request", 400, started, error="X-GitHub-Event header missing")
        if not delivery:
            return answer("bad_request", 400, started, error="X-GitHub-Delivery header missing")
        if event == "ping":
            log.info("ping from GitHub (delivery %s): the webhook is set up", delivery)
            return answer("ping", 200, started)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            log.warning(
                "delivery %s is form-encoded: set the App's webhook content type to "
                "application/json",
                delivery,
            )
            return answer("unsupported_media_type", 415, started, error="send application/json")
        try:
            payload = _load_payload(body)
        except ValueError as exc:
            return answer("bad_request", 400, started, error=str(exc))
        action = payload.get("action") if isinstance(payload, dict) else None
        if not app.accepts(event, action if isinstance(action, str) else None):
            name = f"{event}.{action}" if isinstance(action, str) else event
            return answer("ignored", 202, started, reason=f"{name} is not subscribed")
        try:
            spec = job_spec(event, delivery, payload)
        except Ignored as exc:
            return answer("ignored", 202, started, reason=exc.reason)
        except ValueError as exc:
            return answer("bad_request", 400, started, error=str(exc))
        try:
            accepted = await to_thread.run_sync(
                queue.accept, spec, body, time.time(), limiter=writers
            )
        except Exception:  # answer 500: GitHub records a failed delivery
            log.exception(
                "delivery %s could not be stored; GitHub marks it failed: redeliver it (or run "
                "depthgate reconcile) once the queue (DEPTHGATE_QUEUE_URL) is reachable",
                delivery,
            )
            return answer("error", 500, started, error="could not store the delivery")
        return answer(accepted.value, 202, started, job=spec.key)

    async def healthz(request: Request) -> Response:
        return await _health(queue, missing)

    async def metrics_endpoint(request: Request) -> Response:
        data = await run_in_threadpool(metrics.render)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )


async def _health(queue: Queue, missing: Callable[[], list[str]]) -> Response:
    """200 ok, or 503 with every problem: the queue does not answer, a setting is missing."""
    problems = missing()
    body: dict[str, Any] = {}
    try:
        await run_in_threadpool(queue.store.ping)
    except Exception as exc:  # noqa: BLE001 - any store failure makes the process unhealthy
        body["queue"] = str(exc)
        problems = [*problems, f"queue: {type(exc).__name__}: {exc}"]
    if problems:
        return JSONResponse({"status": "unhealthy", "missing": problems, **body}, status_code=503)
    return JSONResponse({"status": "ok"})
