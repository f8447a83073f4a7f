"""PR comment commands: strict parsing, and who may run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from depthgate.core.commands import (
    ASSOCIATIONS,
    Command,
    Permission,
    Unknown,
    Verb,
    may_write,
    parse_command,
    permission_needed,
)

PAYLOADS = Path(__file__).parent / "data" / "webhooks"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/depthgate review", Command(Verb.REVIEW)),
        ("/depthgate review --full", Command(Verb.REVIEW, full=True)),
        ("/depthgate   review\t--full  ", Command(Verb.REVIEW, full=True)),
        ("\n\n/depthgate plan\nplease, with the new config", Command(Verb.PLAN)),
        ("/depthgate help\r\n", Command(Verb.HELP)),
        ("/depthgate", Unknown("/depthgate")),
        ("/depthgate reveiw", Unknown("/depthgate reveiw")),
        ("/depthgate review --fast", Unknown("/depthgate review --fast")),
        ("/depthgate review --full --full", Unknown("/depthgate review --full --full")),
        ("/depthgate plan --full", Unknown("/depthgate plan --full")),
    ],
)
def test_commands(body: str, expected: Command | Unknown) -> None:
    assert parse_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "LGTM",
        "Could you run /depthgate review again?",  # mentioned, not commanded
        " /depthgate review",  # indented: a code block or a quote in Markdown
        "> /depthgate review",  # quoting someone
        "```\n/depthgate review\n```",  # first line is the fence
        "/depthgate-bot review",
        "/depthgates review",
        "/DEPTHGATE review",
        "/depthgate review " + "x" * 300,
        "thanks\n/depthgate review",  # not the first line
    ],
)
def test_not_commands(body: str | None) -> None:
    assert parse_command(body) is None


@pytest.mark.parametrize(
    ("association", "user_type", "expected"),
    [
        ("OWNER", "User", Permission.ALLOWED),
        ("MEMBER", "User", Permission.ASK),
        ("COLLABORATOR", "User", Permission.ASK),
        ("CONTRIBUTOR", "User", Permission.ASK),
        ("FIRST_TIME_CONTRIBUTOR", "User", Permission.DENIED),
        ("FIRST_TIMER", "User", Permission.DENIED),
        ("NONE", "User", Permission.DENIED),
        ("MANNEQUIN", "User", Permission.DENIED),
        (None, "User", Permission.DENIED),
        ("SOMETHING_NEW", "User", Permission.DENIED),
        ("OWNER", "Bot", Permission.DENIED),
    ],
)
def test_permission_from_the_association(
    association: str | None, user_type: str, expected: Permission
) -> None:
    assert permission_needed(association, user_type) is expected


def test_every_association_github_defines_is_decided() -> None:
    """The webhook schema's own list of author_association values (an oracle we did not write)."""
    schema = json.loads(
        (PAYLOADS / "octokit-webhooks-schemas-7.6.1.bundled.schema.json").read_text()
    )
    values = schema["definitions"]["author_association"]["enum"]
    assert set(values) == set(ASSOCIATIONS), "decide every association GitHub can send"


@pytest.mark.parametrize(
    ("permission", "ok"),
    [("admin", True), ("maintain", True), ("write", True), ("triage", False), ("read", False),
     ("none", False), (None, False)],
)  # fmt: skip
def test_collaborator_permission(permission: str | None, ok: bool) -> None:
    assert may_write(permission) is ok
