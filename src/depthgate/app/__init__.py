"""The GitHub App: webhook server, queue and workers (design §7).

Handlers subscribe with :meth:`App.on` and receive a :class:`Context`; see
:mod:`depthgate.app.surface`. The package needs the ``app`` extra (Starlette, uvicorn, huey,
redis, prometheus-client); the Action never imports it.
"""

from depthgate.app.surface import App, Context, JobMetrics, JobResult, ReviewJob

__all__ = ["App", "Context", "JobMetrics", "JobResult", "ReviewJob"]
