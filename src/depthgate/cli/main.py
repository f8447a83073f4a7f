"""The ``depthgate`` command line (design §3).

An entry point: the one place (with the other entry points) that reads files, the environment and
the clock, and turns errors into exit codes. ``--format json`` prints exactly one JSON document
on stdout; messages go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from depthgate import __version__
from depthgate.app.cli import COMMANDS as APP_COMMANDS
from depthgate.app.cli import add_app_parsers, run_app_command
from depthgate.cli.flags import Flags, secret_values
from depthgate.cli.gitsource import GitBlobReader, repo_sources
from depthgate.cli.instructions import render_block, sync
from depthgate.cli.progress import to_stream
from depthgate.cli.run import result_document, review_diff, run_settings
from depthgate.configfile import (
    find_config,
    layer_repository_config,
    load_config,
    read_guidelines,
)
from depthgate.core.diff import Diff, parse_diff
from depthgate.core.errors import (
    EXIT_FINDINGS,
    EXIT_GATEWAY,
    EXIT_OK,
    DepthgateError,
    InputError,
    UsageError,
)
from depthgate.core.handoff import render_markdown
from depthgate.core.plan import EMPTY_DIFF, build_plan, plan_to_dict, render_text
from depthgate.core.repoconfig import repository_schema
from depthgate.core.report import render_outcome_text
from depthgate.core.routes import LoadedConfig, config_schema
from depthgate.core.secretscan import redact, redact_data
from depthgate.core.source import DIFF_ONLY, SourceCaps, Sources
from depthgate.gateway.client import GatewaySettings
from depthgate.gateway.smoke import render_markdown as render_smoke_markdown
from depthgate.gateway.smoke import render_text as render_smoke_text
from depthgate.gateway.smoke import run_smoke
from depthgate.github.actions import (
    action_outputs,
    add_mask,
    annotation,
    append_summary,
    write_outputs,
)
from depthgate.logs import install


def _source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        metavar="DIR",
        help="the git repository the diff was made in: the code around each hunk comes from its "
        "work tree (new side) and its objects (old side, by the diff's index lines), and the "
        "guideline files (review.guidelines) from --base, else HEAD; without it, the review sees "
        "the diff only",
    )
    parser.add_argument(
        "--base",
        metavar="REV",
        help="with --repo: the commit to read the old side from where the diff names no blob",
    )


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
    _source_flags(plan)
    _common(plan)

    rev = sub.add_parser(
        "review",
        help="review a pull request (or a local diff) through the gateway",
        description="Review a pull request (--pr, or the event's PR inside GitHub Actions) and "
        "post one review and the sticky summary; or review a local diff (--diff with "
        "--dry-run) and print the comments that would be posted. Needs the gateway URL and key "
        "in the environment variables that gateway-routes.yaml names (default "
        "DEPTHGATE_GATEWAY_URL, DEPTHGATE_GATEWAY_KEY), and for a PR a GitHub token "
        "(GITHUB_TOKEN; GITHUB_API_URL for GitHub Enterprise Server).",
    )
    target = rev.add_mutually_exclusive_group()
    target.add_argument("--diff", metavar="PATH", help="unified diff file, or - for stdin")
    target.add_argument(
        "--pr", metavar="OWNER/REPO#N", help="the pull request to review and post to"
    )
    rev.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be posted; post nothing (env DEPTHGATE_DRY_RUN=true)",
    )
    rev.add_argument(
        "--max-comments",
        type=_count,
        metavar="N",
        help="inline comments per review; the rest go to the summary (default: "
        "limits.max_comments; env DEPTHGATE_MAX_COMMENTS)",
    )
    rev.add_argument(
        "--fail-on",
        choices=("info", "low", "medium", "high", "critical"),
        help="exit 1 when a finding at or above this severity was made (default: never; env "
        "DEPTHGATE_FAIL_ON)",
    )
    rev.add_argument(
        "--handoff", metavar="PATH", help="also write the handoff note (JSON) here on failure"
    )
    rev.add_argument(
        "--placement",
        choices=("diff_context", "added"),
        default="diff_context",
        help="which diff lines may carry a comment (default: diff_context)",
    )
    _source_flags(rev)
    _common(rev)

    smoke = sub.add_parser(
        "smoke",
        help="smoke-test every alias and an invalid one; write the JSON record",
        description="Send one small request to every alias in the config and one to an alias "
        "that cannot exist (and with --check-auth, one with a wrong key), and record what the "
        "gateway answered. Exit 0 when everything behaved as expected, 3 otherwise.",
    )
    smoke.add_argument("--out", metavar="FILE", help="also write the JSON record here")
    smoke.add_argument(
        "--check-auth", action="store_true", help="also send one request with a wrong key"
    )
    _common(smoke)

    instr = sub.add_parser(
        "instructions",
        help="keep the Model routing block of AGENTS.md, CLAUDE.md and copilot instructions",
        description="Write (--write) or verify (--check) the marker-delimited 'Model routing' "
        "block in AGENTS.md, CLAUDE.md and .github/copilot-instructions.md from the config. "
        "--check exits 1 when a block is missing or stale.",
    )
    mode = instr.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="create or update the blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a block is not current")
    instr.add_argument("--root", default=".", metavar="DIR", help="repository root (default: .)")
    _common(instr)

    add_app_parsers(sub)  # serve, worker, reconcile: the GitHub App

    routes = sub.add_parser("routes", help="validate the route config or print its JSON Schema")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True, metavar="ACTION")
    check = routes_sub.add_parser("check", help="validate gateway-routes.yaml")
    _common(check)
    check.add_argument(
        "--repository",
        metavar="PATH",
        help="also validate PATH as a repository's config (what the App reads from the default "
        "branch, the Action from the PR's base) laid over --config, and print what it may not set",
    )
    schema = routes_sub.add_parser("schema", help="print the JSON Schema of gateway-routes.yaml")
    _common(schema)
    schema.add_argument(
        "--repository",
        action="store_true",
        help="the schema of a repository's config (review behaviour only) instead",
    )
    return parser


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}")
    return int(text)


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


def operator_config(explicit: str | None, env: Mapping[str, str]) -> LoadedConfig:
    """The config of a command that sends the gateway key somewhere. Locally the working
    directory is the user's own; inside GitHub Actions it is a checkout a pull request may
    have written, so only an explicit path (or the packaged default) is used there."""
    return load_config(explicit, discover=not _in_actions(env))


def local_sources(
    diff: Diff, loaded: LoadedConfig, repo: str | None, base: str | None, err: TextIO
) -> Sources:
    """``--repo DIR [--base REV]``: the changed files from a local repository, else none."""
    if repo is None:
        if base is not None:
            raise UsageError("--base REV needs --repo DIR (the repository to read it from)")
        return DIFF_ONLY
    limits = loaded.config.limits
    caps = SourceCaps(limits.source_max_file_bytes, limits.source_max_pr_bytes)
    sources = repo_sources(diff, repo, base=base, caps=caps)
    for note in sources.notes:
        err.write(f"depthgate: warning: {note}\n")
    return sources


def local_guidelines(
    loaded: LoadedConfig, repo: str | None, base: str | None, err: TextIO
) -> LoadedConfig:
    """``--repo DIR``: the guideline files (review.guidelines) at ``--base`` (else HEAD)."""
    if repo is None:
        return loaded
    with_files = read_guidelines(GitBlobReader(repo), base or "HEAD", loaded)
    for note in with_files.warnings[len(loaded.warnings) :]:
        err.write(f"depthgate: warning: {note}\n")
    return with_files


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    loaded = load_config(args.config)
    diff = read_diff(args.diff, stdin)
    sources = local_sources(diff, loaded, args.repo, args.base, err)
    loaded = local_guidelines(loaded, args.repo, args.base, err)
    plan = build_plan(diff, loaded, sources=sources)
    # the plan shows the diff's paths and hunk headers: no credential shape leaves with them
    if args.format == "json":
        if not diff.files:
            err.write(f"depthgate: {EMPTY_DIFF}\n")
        _emit(redact_data(plan_to_dict(plan)), out)
    else:
        out.write(redact(render_text(plan, verbose=args.verbose)))
    return EXIT_OK


def cmd_review(
    args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO, env: Mapping[str, str]
) -> int:
    # PyGithub costs 0.3 s: only PR runs import it
    from depthgate.cli import actions, ghrun  # noqa: PLC0415

    flags = Flags(
        config=args.config,
        fail_on=args.fail_on,
        max_comments=args.max_comments,
        dry_run=args.dry_run,
        handoff=args.handoff,
        placement=args.placement,
        output_format=args.format,
    )
    if not args.diff and not args.pr and _in_actions(env):
        return actions.review(
            flags, env, out, err, smoke=lambda: cmd_smoke(args, out, env, config=flags.config)
        )
    flags = flags.with_env(env)
    if args.diff:
        return review_local_diff(
            args.diff, flags, out, err, stdin=stdin, env=env, repo=(args.repo, args.base)
        )
    if args.repo or args.base:
        raise UsageError(
            "--repo/--base go with --diff: a PR review reads the PR's files from GitHub"
        )
    if args.pr:
        repo, number = ghrun.parse_pr_ref(args.pr)
        loaded = operator_config(flags.config, env)
        cfg = ghrun.resolve(
            flags,
            loaded,
            env,
            command=f"depthgate review --pr {args.pr}" + (" --dry-run" if flags.dry_run else ""),
            bot_login=None,
        )
        return ghrun.run_review(repo, number, cfg, out, err)
    raise UsageError(
        "review needs a target: --pr OWNER/REPO#N, --diff PATH --dry-run, or to run inside "
        "GitHub Actions (GITHUB_ACTIONS=true with the event in GITHUB_EVENT_PATH)"
    )


def review_local_diff(
    path: str,
    flags: Flags,
    out: TextIO,
    err: TextIO,
    *,
    stdin: TextIO,
    env: Mapping[str, str],
    repo: tuple[str | None, str | None] = (None, None),
) -> int:
    if not flags.dry_run:
        raise UsageError(
            "review --diff reviews a local diff and cannot post it anywhere: add --dry-run "
            "(or use --pr OWNER/REPO#N to review and post to a pull request)"
        )
    loaded = operator_config(flags.config, env)
    diff = read_diff(path, stdin)
    if not diff.files:
        err.write(f"depthgate: {EMPTY_DIFF}\n")
    settings = run_settings(flags, loaded, env, command=f"depthgate review --dry-run --diff {path}")
    sources = local_sources(diff, loaded, repo[0], repo[1], err)
    loaded = local_guidelines(loaded, repo[0], repo[1], err)
    plan = build_plan(diff, loaded, sources=sources)
    result = asyncio.run(review_diff(plan, settings, progress=to_stream(err)))
    if result.handoff is not None:
        err.write(render_markdown(result.handoff, result.secrets))
    if flags.output_format == "json":
        _emit(result_document(result), out)
    elif result.outcome is not None:
        out.write(render_outcome_text(result.outcome, result.secrets))
    return result.code


def cmd_smoke(
    args: argparse.Namespace, out: TextIO, env: Mapping[str, str], config: str | None = None
) -> int:
    """In GitHub Actions the record also goes to a file ($RUNNER_TEMP/depthgate-smoke.json
    unless --out says otherwise), its path to the smoke-report-path output, and a table to the
    job summary."""
    loaded = operator_config(config or args.config or env.get("DEPTHGATE_CONFIG") or None, env)
    in_actions = _in_actions(env)
    if in_actions:
        for value in secret_values(loaded, env):
            out.write(add_mask(value) + "\n")
    settings = GatewaySettings.from_config(loaded.config.gateway, env)
    check_auth = bool(getattr(args, "check_auth", False))
    record = asyncio.run(run_smoke(settings, loaded.config.routes, check_auth=check_auth))
    path = getattr(args, "out", None)
    if path is None and in_actions:
        path = str(Path(env.get("RUNNER_TEMP") or ".") / "depthgate-smoke.json")
    if path:
        Path(path).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if args.format == "json":
        _emit(record, out)
    else:
        out.write(render_smoke_text(record))
    if in_actions:
        if not record["overall_pass"]:
            failed = annotation("error", "depthgate smoke test failed: see the job summary")
            out.write(failed + "\n")
        write_outputs(env.get("GITHUB_OUTPUT"), action_outputs(smoke_report_path=path or ""))
        append_summary(env.get("GITHUB_STEP_SUMMARY"), render_smoke_markdown(record))
    return EXIT_OK if record["overall_pass"] else EXIT_GATEWAY


def smoke_command(
    args: argparse.Namespace, out: TextIO, err: TextIO, env: Mapping[str, str]
) -> int:
    """``depthgate smoke``; inside Actions (``mode: smoke``) a setup error fails the step with
    the annotation and job summary of :func:`depthgate.cli.actions.die`."""
    if not _in_actions(env):
        return cmd_smoke(args, out, env)
    from depthgate.cli import actions  # noqa: PLC0415 -- see cmd_review

    try:
        return cmd_smoke(args, out, env)
    except DepthgateError as exc:
        return actions.die(actions.problem_of(exc), actions.actions_io(env), out, err)


def _in_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def cmd_instructions(args: argparse.Namespace, out: TextIO) -> int:
    loaded = load_config(args.config)
    shown = loaded.source if not loaded.source.startswith("<") else "gateway-routes.yaml"
    block = render_block(loaded.config, shown)
    states = sync(Path(args.root), block, write=args.write)
    if args.format == "json":
        _emit({"files": [{"path": s.path, "state": s.state} for s in states]}, out)
    else:
        out.writelines(f"{s.path}: {s.state}\n" for s in states)
    if args.check and any(s.state != "current" for s in states):
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_routes(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.routes_command == "schema":
        schema = repository_schema() if args.repository else config_schema()
        out.write(json.dumps(schema, indent=2) + "\n")
        return EXIT_OK
    loaded = load_config(args.config)
    if args.repository:
        source, text = find_config(args.repository, Path.cwd())
        loaded = layer_repository_config(loaded, text, source)
        err.writelines(f"depthgate: warning: {w}\n" for w in loaded.warnings)
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
                "warnings": list(loaded.warnings),
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
    install(os.environ)  # what a library logs (a warning, a traceback) is redacted too
    for stream in (out, err):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    try:
        if args.command == "plan":
            return cmd_plan(args, out, err, sys.stdin)
        if args.command == "review":
            return cmd_review(args, out, err, sys.stdin, os.environ)
        if args.command == "smoke":
            return smoke_command(args, out, err, os.environ)
        if args.command == "instructions":
            return cmd_instructions(args, out)
        if args.command in APP_COMMANDS:
            return run_app_command(args)
        return cmd_routes(args, out, err)
    except DepthgateError as exc:
        err.write(f"depthgate: error: {exc.message}\n")
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
