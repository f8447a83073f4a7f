"""Prometheus metrics of one process (``GET /metrics``), in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "depthgate_webhook_deliveries",
            "Webhook deliveries by outcome (queued, collapsed, duplicate, requeued, ignored, "
            "ping, bad_signature, too_large, bad_request, unsupported_media_type, error)",
            ["outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "depthgate_webhook_ack_seconds",
            "Time from a delivery's first byte to its answer",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.jobs = Counter(
            "depthgate_jobs",
            "Jobs by outcome (success, neutral, failure, retried, failed, skipped, superseded, "
            "already_reviewed, reaped)",
            ["outcome"],
            registry=r,
        )
        self.job_seconds = Histogram(
            "depthgate_job_duration_seconds",
            "Duration of job runs, by outcome",
            ["outcome"],
            buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.gateway_calls = Counter(
            "depthgate_gateway_calls",
            "Gateway calls by route alias and error class (none when it succeeded)",
            ["alias", "error_class"],
            registry=r,
        )
        self.github_writes = Counter(
            "depthgate_github_writes",
            "Content-creating GitHub requests by kind",
            ["kind"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "depthgate_queue_depth",
            "Jobs waiting or running (queued + running in the job store)",
            registry=r,
        )
        self.queue_messages = Gauge(
            "depthgate_queue_messages",
            "Messages on the queue engine: ready and scheduled (retries waiting out backoff)",
            ["kind"],
            registry=r,
        )

    def bind_queue(
        self,
        active: Callable[[], float],
        ready: Callable[[], float],
        scheduled: Callable[[], float],
    ) -> None:
        """Read the queue's depth at scrape time."""
        self.queue_depth.set_function(active)
        self.queue_messages.labels("ready").set_function(ready)
        self.queue_messages.labels("scheduled").set_function(scheduled)

    def gateway_call(self, alias: str, error_class: str) -> None:
        self.gateway_calls.labels(alias, error_class).inc()

    def github_write(self, kind: str) -> None:
        self.github_writes.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
