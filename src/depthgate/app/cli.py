"""``depthgate serve``, ``depthgate worker`` and ``depthgate reconcile``.

``depthgate.cli.main`` hooks these in with two lines (``add_app_parsers(sub)`` while building its
parser, ``run_app_command(args)`` when ``args.command`` is one of :data:`COMMANDS`); ``python -m
depthgate.app`` runs them on their own. Settings come from the environment (design §7); an
entry point is the only place that reads it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from depthgate.core.errors import EXIT_GITHUB, EXIT_OK, DepthgateError
from depthgate.logs import install

COMMANDS = ("serve", "worker", "reconcile", "register")

# What each command reads: the worker verifies no webhook, so it takes no webhook secret.
_WORKER_SETTINGS = (
    "DEPTHGATE_APP_ID, DEPTHGATE_PRIVATE_KEY or DEPTHGATE_PRIVATE_KEY_PATH, the gateway's URL and "
    "key (DEPTHGATE_GATEWAY_URL, DEPTHGATE_GATEWAY_KEY, or the variables gateway-routes.yaml "
    "names), DEPTHGATE_QUEUE_URL (sqlite:///depthgate-queue.db by default; redis://HOST:PORT/DB "
    "to scale out), GITHUB_API_URL (GitHub Enterprise Server)"
)
_SERVE_HELP = (
    "Settings come from the environment: DEPTHGATE_WEBHOOK_SECRET (and "
    f"DEPTHGATE_WEBHOOK_SECRET_PREVIOUS while rotating), {_WORKER_SETTINGS}. It does not start "
    "when one of them is missing or the queue does not answer."
)
_WORKER_HELP = (
    f"Settings come from the environment: {_WORKER_SETTINGS}. It does not start when one of "
    "them is missing or the queue does not answer."
)


def _handlers_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--handlers",
        default="depthgate.app.handlers",
        metavar="MODULE",
        help="module whose register(app) subscribes the handlers (default: the review)",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="the server's gateway-routes.yaml, used for repositories without "
        ".github/gateway-routes.yaml on their default branch",
    )
    p.add_argument(
        "--workers", type=int, default=2, metavar="N", help="worker threads (default: 2)"
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def add_app_parsers(sub: Any) -> None:
    """Add the three commands to ``depthgate``'s subparsers."""
    serve = sub.add_parser(
        "serve",
        help="run the GitHub App: webhook server and in-process workers",
        description="Serve POST /webhook, GET /healthz and GET /metrics, and run the review "
        "jobs in this process (SQLite queue by default: one machine, no other service). "
        + _SERVE_HELP,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    _handlers_flag(serve)

    worker = sub.add_parser(
        "worker",
        help="run review jobs from the shared queue (scale-out, with Redis)",
        description="Run queued review jobs; start any number on any machines against the same "
        "DEPTHGATE_QUEUE_URL=redis://HOST:PORT/DB. " + _WORKER_HELP,
    )
    worker.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve /metrics on 127.0.0.1:PORT"
    )
    _handlers_flag(worker)

    rec = sub.add_parser(
        "reconcile",
        help="redeliver the App's recent webhook deliveries that failed",
        description="List the App's recent deliveries and ask GitHub to redeliver each one that "
        "was never answered with a 2xx. Needs DEPTHGATE_APP_ID and the private key; "
        "GITHUB_API_URL for GitHub Enterprise Server.",
    )
    rec.add_argument(
        "--since-hours", type=float, default=24.0, help="look this far back (default 24)"
    )
    rec.add_argument("--dry-run", action="store_true", help="list what would be redelivered")
    rec.add_argument("--max", type=int, default=100, help="redeliver at most this many (100)")
    rec.add_argument("--format", choices=("text", "json"), default="text")

    reg = sub.add_parser(
        "register",
        help="register the GitHub App in one step (GitHub's App-manifest flow)",
        description="With --webhook-url: write an HTML page that creates the App with "
        "depthgate's events and minimal permissions; open it in a browser signed in to GitHub. "
        "With --code (from the redirect GitHub sends you to): fetch the new App's id, private key "
        "and webhook secret into depthgate-app.pem and depthgate-app.env (mode 0600).",
    )
    how = reg.add_mutually_exclusive_group(required=True)
    how.add_argument("--webhook-url", metavar="URL", help="https://HOST/webhook of depthgate serve")
    how.add_argument("--code", help="the code of GitHub's redirect, within the hour")
    reg.add_argument("--name", default="depthgate", help="the App's name (default depthgate)")
    reg.add_argument("--org", help="register it for this organization instead of your account")
    reg.add_argument(
        "--github-url", default="https://github.com", help="GitHub Enterprise: its URL"
    )
    reg.add_argument(
        "--out", default="depthgate-register.html", help="the page (with --webhook-url)"
    )
    reg.add_argument("--dir", default=".", help="where to write the credentials (with --code)")


def _logging(level: str, env: Mapping[str, str]) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs each request's full URL at INFO; exceptions carry what servers answered
    install(env)


def run_app_command(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run serve, worker or reconcile; errors become the message and the exit code."""
    env = os.environ if env is None else env
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.command == "reconcile":
            return _reconcile(args, env, out)
        if args.command == "register":
            return _register(args, env, out)
        # the app extra (huey, starlette, uvicorn) is imported only by the commands that use it
        from depthgate.app.runtime import (  # noqa: PLC0415
            build_runtime,
            serve,
            settings_from,
            work,
        )

        _logging(args.log_level, env)
        settings = settings_from(env, args)
        if args.workers < 1:
            raise DepthgateError("--workers must be at least 1")
        if args.command == "serve":
            settings.require_webhook_secret()
            rt = build_runtime(settings, handlers=args.handlers)
            return serve(rt, host=args.host, port=args.port, workers=args.workers)
        rt = build_runtime(settings, handlers=args.handlers)
        return work(rt, workers=args.workers, metrics_port=args.metrics_port)
    except DepthgateError as exc:
        err.write(f"depthgate: error: {exc.message}\n")
        return exc.exit_code


def _reconcile(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    from depthgate.app.auth import AppAuthenticator  # noqa: PLC0415 - see run_app_command
    from depthgate.app.reconcile import reconcile, render_text  # noqa: PLC0415
    from depthgate.app.settings import AppSettings  # noqa: PLC0415

    settings = AppSettings.from_env(env)
    settings.require_app_credentials()
    assert settings.app_id is not None
    assert settings.private_key is not None
    auth = AppAuthenticator(settings.app_id, settings.private_key, api_url=settings.api_url)
    report = reconcile(
        auth,
        since=time.time() - args.since_hours * 3600,
        dry_run=args.dry_run,
        max_redeliveries=args.max,
    )
    if args.format == "json":
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        out.write(render_text(report, dry_run=args.dry_run))
    return EXIT_GITHUB if report.errors else EXIT_OK


def _register(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    from depthgate.app import register  # noqa: PLC0415 - see run_app_command

    if args.code is not None:
        api = env.get("GITHUB_API_URL") or register.DEFAULT_API_URL
        written = register.convert(args.code, Path(args.dir), api_url=api)
        out.write(
            "The App is registered. Its credentials (keep them secret) are in:\n"
            + "".join(f"  {p}\n" for p in written)
            + "Start the server with them: set -a; . depthgate-app.env; set +a; depthgate serve\n"
            "Then install the App on your repositories from its settings page.\n"
        )
        return EXIT_OK
    data = register.manifest(webhook_url=args.webhook_url, name=args.name)
    page = register.form_page(data, github_url=args.github_url, org=args.org)
    Path(args.out).write_text(page, encoding="utf-8")
    out.write(
        f"Open {args.out} in a browser signed in to GitHub and press 'Create the GitHub App'.\n"
        "GitHub then sends you to the server's address with ?code=...: run\n"
        "  depthgate register --code CODE\n"
        "within the hour to fetch the App's id, private key and webhook secret.\n"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="depthgate")
    add_app_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return run_app_command(parser.parse_args(argv))
