"""``depthgate review`` / ``depthgate smoke`` inside GitHub Actions: the event decides what runs,
and every failure to even start is reported once, where the user looks (style habit 5,
pypi-publish's ``die()``).

:func:`die` is the one way a setup error leaves a workflow step: one ``::error::`` annotation (on
the run's page), a job summary that says what is wrong, what to set and where, the message on
stderr (the log), and the exit code -- never the CLI's bare ``depthgate: error:`` line alone.
Missing secrets get their own message: a same-repository PR needs a repository secret passed
to the action's input, a Dependabot PR a Dependabot secret (workflows triggered by Dependabot
see no Actions secrets), a fork PR none at all (a notice: GitHub gives forks no secrets).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from depthgate.cli import talk
from depthgate.cli.flags import Flags, secret_values
from depthgate.cli.ghrun import ACTIONS_BOT, ActionsIO, resolve, run_review
from depthgate.configfile import load_config, read_guidelines, read_repository_config
from depthgate.core.errors import EXIT_OK, EXIT_USAGE, ConfigError, DepthgateError, UsageError
from depthgate.core.guidance import skip_reason
from depthgate.core.markdown import Escape
from depthgate.core.routes import GatewayConfig, LoadedConfig
from depthgate.github.actions import (
    Event,
    Kind,
    action_outputs,
    add_mask,
    annotation,
    append_summary,
    decide,
    read_event,
    write_outputs,
)
from depthgate.github.client import GitHubSettings, PullRequestClient

DEPENDABOT = "dependabot[bot]"
SECRETS_PAGE = "Settings → Secrets and variables → {kind}"


@dataclass(frozen=True)
class SetupProblem:
    """Why the step could not start, and what fixes it."""

    title: str
    cause: str
    fix: str
    exit_code: int = EXIT_USAGE


def actions_io(env: Mapping[str, str]) -> ActionsIO:
    return ActionsIO(env.get("GITHUB_OUTPUT"), env.get("GITHUB_STEP_SUMMARY"))


def die(problem: SetupProblem, actions: ActionsIO, out: TextIO, err: TextIO) -> int:
    """Fail the step once: annotation, job summary, log line, exit code."""
    out.write(annotation("error", f"{problem.cause} {problem.fix}", title=problem.title) + "\n")
    err.write(f"depthgate: error: {problem.cause} {problem.fix}\n")
    write_outputs(actions.output_path, action_outputs())
    # the cause may quote the repository's config or the event: escaped; the fix is ours
    append_summary(
        actions.summary_path,
        f"## {problem.title}\n\n{Escape().text(problem.cause)}\n\n**What to do:** {problem.fix}\n\n"
        "Nothing was sent to the gateway and nothing was posted.\n",
    )
    return problem.exit_code


def problem_of(exc: DepthgateError) -> SetupProblem:
    """The template for an error raised before the review could start."""
    if isinstance(exc, ConfigError):
        return SetupProblem(
            "depthgate: configuration error",
            exc.message,
            "Fix gateway-routes.yaml (`depthgate routes check` lists every problem; "
            "`--repository FILE` for the repository's own file, read at the PR's base commit), "
            "or point the action's `config` input at a valid file.",
        )
    if isinstance(exc, UsageError):
        return SetupProblem(
            "depthgate: invalid input",
            exc.message,
            "Fix the action's inputs in the workflow file (`with:` of the depthgate step).",
        )
    return SetupProblem(
        "depthgate could not start",
        exc.message,
        "Fix what the message names, then re-run the job.",
        exc.exit_code,
    )


def missing_secret(
    gw: GatewayConfig, env: Mapping[str, str], *, dependabot: bool
) -> SetupProblem | None:
    """The gateway URL or key the config needs but the workflow did not pass."""
    missing = []
    if gw.base_url is None and gw.base_url_env and not env.get(gw.base_url_env):
        missing.append(("gateway-url", gw.base_url_env))
    if gw.auth != "none" and not env.get(gw.api_key_env):
        missing.append(("gateway-key", gw.api_key_env))
    if not missing:
        return None
    names = " and ".join(f"`{var}` (the action's `{inp}` input)" for inp, var in missing)
    passed = ", ".join(f"`{inp}: ${{{{ secrets.{var} }}}}`" for inp, var in missing)
    if dependabot:
        fix = (
            "Workflows run for Dependabot's pull requests see Dependabot secrets, not Actions "
            f"secrets: add the same secrets under {SECRETS_PAGE.format(kind='Dependabot')} and "
            f"keep passing them to the action ({passed})."
        )
    else:
        fix = (
            f"Add them as repository secrets ({SECRETS_PAGE.format(kind='Actions')}) and pass "
            f"them to the action in the workflow: {passed}."
        )
    return SetupProblem("depthgate: gateway secret missing", f"{names} is empty.", fix)


def review(
    flags: Flags,
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    *,
    smoke: Callable[[], int],
) -> int:
    """``depthgate review`` with no ``--diff``/``--pr`` inside Actions: the event decides."""
    actions = actions_io(env)
    try:
        return _review(flags, env, out, err, actions, smoke=smoke)
    except DepthgateError as exc:
        return die(problem_of(exc), actions, out, err)


def _review(
    flags: Flags,
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    actions: ActionsIO,
    *,
    smoke: Callable[[], int],
) -> int:
    flags = flags.with_env(env)
    # The workspace is the PR's checkout, so no config is taken from it unasked: the operator's
    # is the workflow's `config:` input (then it is the whole config) or the packaged default;
    # the repository's is read from the PR's base commit, below.
    loaded = load_config(flags.config, discover=False)
    for value in secret_values(loaded, env):
        out.write(add_mask(value) + "\n")
    event_name = env.get("GITHUB_EVENT_NAME", "")
    if not event_name:
        raise UsageError("GITHUB_EVENT_NAME is not set: is this running inside GitHub Actions?")
    event = read_event(env.get("GITHUB_EVENT_PATH"))
    decision = decide(event_name, event)
    if decision.kind is Kind.SMOKE:
        return smoke()
    if decision.kind is Kind.SKIP:
        return _neutral(actions, out, f"skipped: {decision.reason}")
    if decision.kind is Kind.COMMAND:
        return _command(event, loaded, flags=flags, env=env, out=out, err=err, actions=actions)
    if decision.kind is Kind.REPLY:
        return _reply(
            event, loaded, decision.fork, flags=flags, env=env, out=out, err=err, actions=actions
        )
    pr = event.pull_request
    repo = event.repository.full_name if event.repository else None
    assert pr is not None  # decide() reviews only events with a pull request
    if repo is None:
        raise UsageError(f"{env.get('GITHUB_EVENT_PATH')}: the event names no repository")
    if flags.config is None:
        # read before the secrets are needed: a skipped PR (Dependabot's, which get none) is
        # told so, not failed for a missing key
        loaded = _base_config(repo, pr.number, pr.base.sha, loaded, env)
        for warning in loaded.warnings:
            out.write(annotation("warning", warning, title="depthgate config") + "\n")
    skip = skip_reason(loaded.config.review.skip, pr.facts())
    if skip is not None:
        return _neutral(actions, out, f"not reviewed: {skip}")
    gw = loaded.config.gateway
    if decision.fork and gw.auth != "none" and not env.get(gw.api_key_env):
        return _neutral(
            actions,
            out,
            f"{decision.reason}: GitHub gives workflows no secrets on fork pull requests, so "
            "there is no gateway key and nothing was reviewed. Install the depthgate GitHub App "
            "to review fork PRs (README: 'Fork pull requests').",
        )
    problem = missing_secret(gw, env, dependabot=env.get("GITHUB_ACTOR") == DEPENDABOT)
    if problem is not None:
        return die(problem, actions, out, err)
    temp = Path(env.get("RUNNER_TEMP") or ".")
    cfg = resolve(
        flags,
        loaded,
        env,
        command=f"depthgate review ({event_name} {event.action} on {repo}#{pr.number})",
        bot_login=ACTIONS_BOT,
        default_handoff=temp / "depthgate-handoff.json",
    )
    workspace = env.get("GITHUB_WORKSPACE")  # the checkout: context where it is the PR's head
    return run_review(
        repo,
        pr.number,
        cfg,
        out,
        err,
        actions=actions,
        fork=decision.fork,
        checkout=Path(workspace) if workspace else None,
        # the workflow's config: input is the whole config; the base commit's guideline files
        # come in the changed files' read (or one of their own when the checkout has those)
        guidelines_at=pr.base.sha if flags.config is not None else None,
    )


def _base_config(
    repo: str, number: int, base_sha: str, operator: LoadedConfig, env: Mapping[str, str]
) -> LoadedConfig:
    """The repository's config on the PR's base commit over the operator's, with the guideline
    files there: one GitHub read."""
    with PullRequestClient(repo, number, GitHubSettings.from_env(env)) as client:
        return read_repository_config(client, repo, base_sha, operator)


def _repository(event: Event, env: Mapping[str, str]) -> str:
    if event.repository is None:
        raise UsageError(f"{env.get('GITHUB_EVENT_PATH')}: the event names no repository")
    return event.repository.full_name


def _command(
    event: Event,
    operator: LoadedConfig,
    *,
    flags: Flags,
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    actions: ActionsIO,
) -> int:
    """``issue_comment``: a ``/depthgate`` command (:func:`depthgate.cli.talk.command`). The
    workflow runs on the default branch with its secrets, whoever wrote the comment: nothing
    from the PR is run, and only people with write access get more than silence."""
    repo = _repository(event, env)
    assert event.issue is not None  # decide() lets commands through only with both
    number = event.issue.number
    bot = env.get("DEPTHGATE_BOT_LOGIN") or ACTIONS_BOT
    with PullRequestClient(repo, number, GitHubSettings.from_env(env)) as client:
        base = client.info().base_sha
        loaded = _config_at(client, repo, base, operator, explicit=flags.config, out=out)
        said = talk.command(event.raw_comment, client, loaded, bot=bot)
    if said.outcome == "ignored":
        return _neutral(actions, out, f"not run: {said.why}")
    if said.outcome == "answered":
        return _neutral(actions, out, f"PR #{number}: {said.why}")
    problem = missing_secret(loaded.config.gateway, env, dependabot=False)
    if problem is not None:
        return die(problem, actions, out, err)
    cfg = resolve(
        flags,
        loaded,
        env,
        command=f"depthgate review (/depthgate review{' --full' if said.full else ''} on "
        f"{repo}#{number})",
        bot_login=ACTIONS_BOT,
        default_handoff=Path(env.get("RUNNER_TEMP") or ".") / "depthgate-handoff.json",
    )
    # the workspace, if any, is the default branch's checkout, not the PR's head: no context
    # is read from it
    return run_review(repo, number, cfg, out, err, actions=actions, full=said.full)


def _reply(
    event: Event,
    operator: LoadedConfig,
    fork: bool,
    *,
    flags: Flags,
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    actions: ActionsIO,
) -> int:
    """``pull_request_review_comment``: a reply in one of depthgate's threads gets one answer
    (:func:`depthgate.cli.talk.answer`); nothing is posted when the gateway fails."""
    repo = _repository(event, env)
    pr = event.pull_request
    assert pr is not None  # decide() lets replies through only with a PR
    gw = operator.config.gateway
    if fork and gw.auth != "none" and not env.get(gw.api_key_env):
        return _neutral(
            actions,
            out,
            f"PR #{pr.number} is from a fork: GitHub gives its workflows no secrets, so a reply "
            "there is not answered. The depthgate GitHub App answers on fork PRs.",
        )
    bot = env.get("DEPTHGATE_BOT_LOGIN") or ACTIONS_BOT
    with PullRequestClient(repo, pr.number, GitHubSettings.from_env(env)) as client:
        loaded = _config_at(client, repo, pr.base.sha, operator, explicit=flags.config, out=out)
        problem = missing_secret(loaded.config.gateway, env, dependabot=False)
        if problem is not None:
            return die(problem, actions, out, err)
        said = asyncio.run(
            talk.answer(event.raw_comment, client, loaded, env, bot=bot, now=time.time())
        )
    if said.outcome == "failed":
        out.write(annotation("warning", said.why, title="depthgate reply") + "\n")
        append_summary(actions.summary_path, f"## depthgate\n\n{Escape().text(said.why)}\n")
        write_outputs(actions.output_path, action_outputs())
        return EXIT_OK
    return _neutral(actions, out, said.why)


def _config_at(
    client: PullRequestClient,
    repo: str,
    rev: str,
    operator: LoadedConfig,
    *,
    explicit: str | None,
    out: TextIO,
) -> LoadedConfig:
    """The config at the PR's base, its warnings annotated: the repository's over the
    operator's with the guideline files (one read), or -- with the workflow's ``config:``
    input, the whole config -- the guideline files alone."""
    if explicit is not None:
        wanted = operator.config.review.guidelines
        loaded = read_guidelines(client, rev, operator) if wanted else operator
    else:
        loaded = read_repository_config(client, repo, rev, operator)
    for warning in loaded.warnings:
        out.write(annotation("warning", warning, title="depthgate config") + "\n")
    return loaded


def _neutral(actions: ActionsIO, out: TextIO, message: str) -> int:
    # the message names the fork (a repository name) or the event's action
    out.write(annotation("notice", message, title="depthgate") + "\n")
    write_outputs(actions.output_path, action_outputs())
    append_summary(actions.summary_path, f"## depthgate\n\n{Escape().text(message)}\n")
    return EXIT_OK
