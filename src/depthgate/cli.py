"""The ``depthgate`` command line (design §3).

An entry point: the one place (with the other entry points) that reads files, the environment and
the clock, and turns errors into exit codes. ``--format json`` prints exactly one JSON document
on stdout; messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from depthgate import __version__
from depthgate.diff import Diff, parse_diff
from depthgate.errors import EXIT_OK, DepthgateError, InputError
from depthgate.plan import build_plan, plan_to_dict, render_text
from depthgate.routes import config_schema, load_config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="route config (default: gateway-routes.yaml, then .github/gateway-routes.yaml, "
        "then the packaged default)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depthgate",
        description="Review pull requests through an LLM gateway, each hunk at the depth it needs.",
    )
    parser.add_argument("--version", action="version", version=f"depthgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan = sub.add_parser(
        "plan",
        help="show the routing plan for a diff (offline)",
        description="Parse a diff, classify each hunk by review depth and pack gateway tasks. "
        "Sends nothing anywhere.",
    )
    plan.add_argument(
        "--diff", required=True, metavar="PATH", help="unified diff file, or - for stdin"
    )
    plan.add_argument(
        "-v", "--verbose", action="store_true", help="list every hunk with its reasons"
    )
    _common(plan)

    routes = sub.add_parser("routes", help="validate the route config or print its JSON Schema")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True, metavar="ACTION")
    check = routes_sub.add_parser("check", help="validate gateway-routes.yaml")
    _common(check)
    schema = routes_sub.add_parser("schema", help="print the JSON Schema of gateway-routes.yaml")
    _common(schema)
    return parser


def read_diff(path: str, stdin: TextIO) -> Diff:
    if path == "-":
        data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
        source = "<stdin>"
    else:
        source = path
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise InputError(f"{path}: no such file; pass --diff PATH (or - for stdin)") from None
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory, expected a diff file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        return parse_diff(data)
    except InputError as exc:
        raise type(exc)(f"{source}: {exc.message}") from None


def _emit(doc: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def cmd_plan(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    loaded = load_config(args.config)
    diff = read_diff(args.diff, stdin)
    plan = build_plan(diff, loaded)
    if args.format == "json":
        _emit(plan_to_dict(plan), out)
    else:
        out.write(render_text(plan, verbose=args.verbose))
    return EXIT_OK


def cmd_routes(args: argparse.Namespace, out: TextIO) -> int:
    if args.routes_command == "schema":
        schema = config_schema()
        out.write(json.dumps(schema, indent=2) + "\n")
        return EXIT_OK
    loaded = load_config(args.config)
    cfg = loaded.config
    if args.format == "json":
        _emit(
            {
                "valid": True,
                "source": loaded.source,
                "sha256": loaded.sha256,
                "routes": sorted(cfg.routes),
                "tiers": cfg.tiers.model_dump(),
                "profile": cfg.gateway.profile.value,
            },
            out,
        )
    else:
        tiers = ", ".join(f"{t} -> {a}" for t, a in cfg.tiers.model_dump().items())
        out.write(
            f"{loaded.source}: valid ({len(cfg.routes)} routes; {tiers}; "
            f"profile {cfg.gateway.profile.value}; sha256 {loaded.sha256[:12]})\n"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    for stream in (out, err):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    try:
        if args.command == "plan":
            return cmd_plan(args, out, sys.stdin)
        return cmd_routes(args, out)
    except DepthgateError as exc:
        err.write(f"depthgate: error: {exc.message}\n")
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
