"""PR comment commands (design §11): ``/depthgate review``, ``review --full``, ``plan``, ``help``.

Parsing is strict, so that depthgate never acts on a comment that merely mentions it:

* the command is the comment's first non-blank line, starting at column 0 with ``/depthgate``
  (not quoted with ``>``, not inside a code block: those are people talking *about* it);
* words after it must be a known verb and known flags; anything else is an :class:`Unknown`
  command (answered with the help text, so a typo is not silently ignored);
* any other comment is not a command at all (``None``): depthgate does nothing.

Who may run a command is decided by :func:`permission_needed` from what the event says
(``author_association``), and by the collaborator-permission API where that is unclear.
Pure: text in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PREFIX = "/depthgate"
MAX_COMMAND_LINE = 200  # a longer first line is prose that happens to start with the prefix


class Verb(StrEnum):
    REVIEW = "review"  # what is not reviewed yet, failed hunks included
    PLAN = "plan"  # the routing plan, as a reply
    HELP = "help"


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    full: bool = False  # review --full: every hunk again (fingerprints still prevent duplicates)


@dataclass(frozen=True, slots=True)
class Unknown:
    """``/depthgate`` followed by something depthgate does not know: answered with help."""

    text: str


_FLAGS: dict[Verb, frozenset[str]] = {
    Verb.REVIEW: frozenset({"--full"}),
    Verb.PLAN: frozenset(),
    Verb.HELP: frozenset(),
}

HELP = """\
depthgate commands (a comment whose first line is the command; write access needed):

| command | does |
|---|---|
| `/depthgate review` | review what is not reviewed yet on this head, failed hunks included |
| `/depthgate review --full` | review every hunk again (comments already posted are not repeated) |
| `/depthgate plan` | reply with the routing plan: each hunk's depth, alias and context |
| `/depthgate help` | this list |
"""


def parse_command(body: str | None) -> Command | Unknown | None:
    """The command a comment gives, or None when the comment is not addressed to depthgate."""
    if not body:
        return None
    first = next((ln for ln in body.replace("\r\n", "\n").split("\n") if ln.strip()), "")
    if not first.startswith(PREFIX) or len(first) > MAX_COMMAND_LINE:
        return None
    rest = first[len(PREFIX) :]
    if rest and not rest[0].isspace():
        return None  # "/depthgate-bot", "/depthgates": another word
    words = rest.split()
    if not words:
        return Unknown(first.strip())
    try:
        verb = Verb(words[0])
    except ValueError:
        return Unknown(first.strip())
    flags = words[1:]
    if len(set(flags)) != len(flags) or not set(flags) <= _FLAGS[verb]:
        return Unknown(first.strip())
    return Command(verb, full="--full" in flags)


class Permission(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    ASK = "ask"  # the association does not say: ask the collaborator-permission API


# author_association values (GitHub's webhook schema) and what each tells about write access.
ASSOCIATIONS = {
    "OWNER": Permission.ALLOWED,
    "MEMBER": Permission.ASK,  # an org member may have read access only to this repository
    "COLLABORATOR": Permission.ASK,  # outside collaborators can be read/triage only
    "CONTRIBUTOR": Permission.ASK,  # has contributed; may or may not have write access now
    "FIRST_TIMER": Permission.DENIED,
    "FIRST_TIME_CONTRIBUTOR": Permission.DENIED,
    "MANNEQUIN": Permission.DENIED,
    "NONE": Permission.DENIED,
}
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


def permission_needed(author_association: str | None, user_type: str | None) -> Permission:
    """What the event alone says about the commenter's right to run a command."""
    if user_type == "Bot":
        return Permission.DENIED  # bots never drive depthgate, depthgate itself included
    return ASSOCIATIONS.get((author_association or "").upper(), Permission.DENIED)


def may_write(permission: str | None) -> bool:
    """The collaborator-permission API's answer (``permission`` or ``role_name``) means write."""
    return (permission or "").lower() in WRITE_PERMISSIONS
