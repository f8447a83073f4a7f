"""A stateful fake of GitHub's REST API, served over real HTTP on 127.0.0.1 (a free port).

Usage::

    with serve_github() as fake:              # fake.url: PyGithub base_url / GITHUB_API_URL
        fake.add_pull("o/r", 7, head_sha=SHA, files=[{"filename": "a.py", "patch": "@@ ..."}])
        ...                                   # drive PyGithub / depthgate with "ghs_test_write"
        assert fake.reviews("o/r", 7) and not fake.errors

Faithful where depthgate can get it wrong: a review is validated against the diff of the commit
it names, all or nothing, with GitHub's 422 texts (several errors of one thread joined as GitHub
joins them); bodies are capped at 65,536 characters; lists are paginated with GitHub's ``Link``
header (``/repositories/{id}/...`` URLs, as GitHub sends them); tokens can be unknown (401),
read-only or lacking a permission (403), scoped to some repositories (404); content creation is
limited per minute and per hour (secondary limit, 403 with ``retry-after``).

Its own small unified-diff hunk parser (:func:`parse_patch`): nothing of depthgate runs in here,
so a bug in depthgate's diff code cannot hide in both.

Every request is recorded (:class:`Recorded`, Authorization redacted); faults (any status, body,
headers), GitHub's rate-limit answers and a head that moves between two requests can be
injected. A bug of the fake itself answers 500 and lands in ``fake.errors``.

Texts marked "unverified" below are plausible GitHub texts no primary source confirmed.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import jwt

API_VERSION = "2022-11-28"
BODY_MAX = 65_536  # reviews, review comments, issue comments
CHECK_OUTPUT_MAX = 65_535  # check run output.summary / output.text
FILES_MAX = 3_000
DIFF_MAX_FILES = 300
DIFF_MAX_LINES = 20_000
RATE_LIMIT = 5_000

DOCS = "https://docs.github.com/rest"
DOCS_REVIEW = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
DOCS_ISSUE_COMMENT = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
DOCS_SECONDARY = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
DOCS_PRIMARY = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
)

# The 422 texts of POST /pulls/{n}/reviews. GitHub joins the errors of one thread as a sentence
# ("A and B", "A, B, and C"): see :func:`to_sentence`.
LINE_NOT_IN_DIFF = "Pull request review thread line must be part of the diff"
START_NOT_IN_HUNK = (
    "Pull request review thread start line must be part of the same hunk as the line."
)
START_NOT_BEFORE = "Pull request review thread start line must precede the end line."
HUNK_BLANK = "Pull request review thread diff hunk can't be blank"
PATH_UNRESOLVED = "Path could not be resolved"
LINE_UNRESOLVED = "Line could not be resolved"  # position out of the diff, or no line at all
ONE_PENDING = "User can only have one pending review per pull request"
BODY_TOO_LONG = "body is too long (maximum is 65536 characters)"
COMMENT_BODY_TOO_LONG = "Pull request review comment body is too long (maximum is 65536 characters)"
BODY_REQUIRED = "Body can't be blank"  # unverified: COMMENT/REQUEST_CHANGES without a body
OWN_APPROVE = "Can not approve your own pull request"
OWN_REQUEST_CHANGES = "Can not request changes on your own pull request"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    406: "Not Acceptable",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def to_sentence(items: list[str]) -> str:
    """Rails' Array#to_sentence, as GitHub joins several validation errors of one thread."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def blob_sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


# --- the unified-diff hunk parser (independent of depthgate.core.diff) ---------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Row:
    """One line of a file's patch. ``index`` is its diff position (the first header is 0)."""

    kind: str  # "@" hunk header, "+" added, "-" deleted, " " context, "\\" no-newline marker
    old: int | None
    new: int | None
    hunk: int
    index: int


@dataclass
class Patch:
    lines: list[str]
    rows: list[Row]
    hunk_starts: list[int]  # row index of each hunk's header
    right: dict[int, Row]  # new line number -> added or context row
    left: dict[int, Row]  # old line number -> deleted or context row
    additions: int
    deletions: int

    def row(self, side: str, line: int) -> Row | None:
        return (self.right if side == "RIGHT" else self.left).get(line)

    def diff_hunk(self, row: Row) -> str:
        """GitHub's ``diff_hunk`` of a comment: its hunk's header down to the commented line."""
        return "\n".join(self.lines[self.hunk_starts[row.hunk] : row.index + 1])


def parse_patch(patch: str) -> Patch:
    if patch == "":  # a rename or mode change without content changes
        return Patch([], [], [], {}, {}, 0, 0)
    lines = patch.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    rows: list[Row] = []
    starts: list[int] = []
    right: dict[int, Row] = {}
    left: dict[int, Row] = {}
    hunk, old, new, adds, dels = -1, 0, 0, 0, 0
    for i, text in enumerate(lines):
        head = _HUNK.match(text)
        if head:
            hunk += 1
            old, new = int(head.group(1)), int(head.group(3))
            starts.append(i)
            rows.append(Row("@", None, None, hunk, i))
            continue
        if hunk < 0:
            raise ValueError(f"patch does not start with a hunk header: {text!r}")
        mark = text[:1]
        if mark == "+":
            row = Row("+", None, new, hunk, i)
            right[new] = row
            new += 1
            adds += 1
        elif mark == "-":
            row = Row("-", old, None, hunk, i)
            left[old] = row
            old += 1
            dels += 1
        elif mark in (" ", ""):
            row = Row(" ", old, new, hunk, i)
            left[old] = row
            right[new] = row
            old += 1
            new += 1
        elif mark == "\\":
            row = Row("\\", None, None, hunk, i)
        else:
            raise ValueError(f"unexpected patch line {i}: {text!r}")
        rows.append(row)
    return Patch(lines, rows, starts, right, left, adds, dels)


# --- state -------------------------------------------------------------------------------------


@dataclass
class Token:
    token: str
    write: bool = True
    login: str = "github-actions[bot]"
    user_id: int = 41898282
    user_type: str = "Bot"
    installation: bool = True  # an installation (or Actions) token: GET /user is a 403
    repositories: frozenset[str] | None = None  # full names it may see; None: every repo
    permissions: dict[str, str] | None = None  # None: everything, read or write per `write`
    expires_at: float | None = None
    used: int = 0


@dataclass
class App:
    app_id: int
    public_key: str | bytes | None
    slug: str
    client_id: str
    bot_id: int


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    repositories: frozenset[str] | None  # None: all repositories of the fake
    permissions: dict[str, str]


@dataclass
class Repo:
    full_name: str
    id: int
    default_branch: str
    private: bool


@dataclass
class Pull:
    repo: Repo
    number: int
    id: int
    head_sha: str
    base_sha: str
    state: str
    draft: bool
    title: str
    body: str | None
    head_repo: str
    head_ref: str
    base_ref: str
    user_login: str
    created: float
    updated: float
    heads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sha -> files, in order
    patches: dict[tuple[str, str], Patch | None] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    ts: float = 0.0  # time.monotonic() at arrival
    actor: str | None = None  # login the request authenticated as


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class HeadMove:
    method: str
    pattern: re.Pattern[str]
    full_name: str
    number: int
    sha: str
    files: list[dict[str, Any]]
    times: int


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, message: str, docs: str = DOCS, **extra: Any) -> ApiError:
    return ApiError(
        status, {"message": message, **extra, "documentation_url": docs, "status": str(status)}
    )


def _not_found() -> ApiError:
    return _error(404, "Not Found")


def _unprocessable(text: str, docs: str = DOCS_REVIEW) -> ApiError:
    return _error(422, "Unprocessable Entity", docs, errors=[text])


def _invalid(detail: str, docs: str = DOCS) -> ApiError:
    """GitHub's JSON-schema validation failure (422 "Invalid request.")."""
    return _error(422, f"Invalid request.\n\n{detail}", docs)


def _forbidden() -> ApiError:
    return _error(403, "Resource not accessible by integration")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[_Ctx], Response]
    permission: str  # pull_requests | issues | checks | contents | metadata | app | user
    write: bool


@dataclass
class _Ctx:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    params: dict[str, str]
    token: Token | None = None
    app: App | None = None

    def repo_name(self) -> str:
        return f"{self.params['owner']}/{self.params['repo']}"


_R = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


class FakeGitHub:
    """The fake's state, its HTTP server and the record of every request."""

    def __init__(
        self,
        *,
        default_tokens: bool = True,
        content_limits: tuple[int, int] | None = (80, 500),
        api_version: str = API_VERSION,
    ) -> None:
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # tracebacks of the fake's own bugs (answered with a 500)
        self._manifest_codes: dict[str, dict[str, Any]] = {}
        self._collaborators: dict[tuple[str, str], str] = {}
        self.reactions: list[dict[str, Any]] = []
        self.graphql_blob_requests = 0  # files asked for through GraphQL, all queries together
        self.content_limits = content_limits  # content-creating requests per minute, per hour
        self.api_version = api_version
        self._lock = threading.RLock()
        self._ids = itertools.count(1_000_001)
        self._epoch = time.time()
        self._repos: dict[str, Repo] = {}
        self._pulls: dict[tuple[str, int], Pull] = {}
        self._tokens: dict[str, Token] = {}
        self._apps: dict[int, App] = {}
        self._installations: dict[int, Installation] = {}
        self._reviews: list[dict[str, Any]] = []
        self._review_comments: list[dict[str, Any]] = []
        self._issue_comments: list[dict[str, Any]] = []
        self._check_runs: list[dict[str, Any]] = []
        self._contents: dict[tuple[str, str, str | None], str] = {}
        self._deliveries: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._moves: list[HeadMove] = []
        self._created: list[float] = []  # monotonic times of content-creating requests
        self._connections: set[socket.socket] = set()
        self._routes = self._route_table()
        if default_tokens:
            self.add_token("ghs_test_write", write=True)
            self.add_token("ghs_test_read", write=False)
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # wake handlers blocked on a kept-alive connection
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- setup ---------------------------------------------------------------------------------

    def add_repo(
        self, full_name: str, default_branch: str = "main", private: bool = False
    ) -> dict[str, Any]:
        with self._lock:
            if full_name not in self._repos:
                self._repos[full_name] = Repo(full_name, next(self._ids), default_branch, private)
            return self._repo_json(self._repos[full_name])

    def add_pull(
        self,
        full_name: str,
        number: int,
        *,
        head_sha: str,
        files: list[dict[str, Any]],
        base_sha: str = "b" * 40,
        state: str = "open",
        draft: bool = False,
        title: str = "A pull request",
        body: str | None = "",
        head_repo: str | None = None,
        head_ref: str = "feature",
        base_ref: str | None = None,
        user_login: str = "octocat",
    ) -> dict[str, Any]:
        """``files`` in the shape of GET /pulls/{n}/files; a file without ``patch`` is binary or
        too large. ``state`` is open, closed or merged; ``head_repo`` another full name: a fork."""
        if state not in ("open", "closed", "merged"):
            raise ValueError(f"state must be open, closed or merged: {state!r}")
        with self._lock:
            self.add_repo(full_name)
            repo = self._repos[full_name]
            now = time.time()
            pull = Pull(
                repo=repo,
                number=number,
                id=next(self._ids),
                head_sha=head_sha,
                base_sha=base_sha,
                state=state,
                draft=draft,
                title=title,
                body=body,
                head_repo=head_repo or full_name,
                head_ref=head_ref,
                base_ref=base_ref or repo.default_branch,
                user_login=user_login,
                created=now,
                updated=now,
            )
            self._pulls[(full_name, number)] = pull
            self._store_head(pull, head_sha, files)
            return self._pull_json(pull)

    def push(
        self, full_name: str, number: int, new_head_sha: str, files: list[dict[str, Any]]
    ) -> None:
        """Move the head (a synchronize). Older heads keep their files: a review may still name
        one in ``commit_id`` and is checked against that commit's diff."""
        with self._lock:
            pull = self._pulls[(full_name, number)]
            self._store_head(pull, new_head_sha, files)
            pull.head_sha = new_head_sha
            pull.updated = time.time()

    def add_token(
        self,
        token: str,
        *,
        write: bool = True,
        login: str = "github-actions[bot]",
        user_id: int = 41898282,
        user_type: str = "Bot",
        installation: bool | None = None,
        repositories: Iterable[str] | None = None,
        permissions: dict[str, str] | None = None,
        expires_at: float | None = None,
    ) -> Token:
        tok = Token(
            token=token,
            write=write,
            login=login,
            user_id=user_id,
            user_type=user_type,
            installation=token.startswith("ghs_") if installation is None else installation,
            repositories=None if repositories is None else frozenset(repositories),
            permissions=permissions,
            expires_at=expires_at,
        )
        with self._lock:
            self._tokens[token] = tok
        return tok

    def add_app(
        self,
        app_id: int,
        *,
        public_key: str | bytes | None = None,
        slug: str = "depthgate",
        client_id: str | None = None,
    ) -> None:
        """A GitHub App whose JWTs are accepted; with ``public_key`` (PEM) the RS256 signature
        is verified too."""
        with self._lock:
            self._apps[app_id] = App(
                app_id, public_key, slug, client_id or f"Iv1.{app_id:016x}", next(self._ids)
            )

    def add_installation(
        self,
        installation_id: int,
        *,
        app_id: int,
        account: str,
        repositories: Iterable[str] | None = None,
        permissions: dict[str, str] | None = None,
    ) -> None:
        default = {
            "metadata": "read",
            "contents": "read",
            "pull_requests": "write",
            "issues": "write",
            "checks": "write",
        }
        with self._lock:
            self._installations[installation_id] = Installation(
                installation_id,
                app_id,
                account,
                None if repositories is None else frozenset(repositories),
                dict(permissions if permissions is not None else default),
            )

    def add_contents(self, full_name: str, path: str, text: str, ref: str | None = None) -> None:
        """A file of the repository; ``ref=None`` serves it at every ref that has no own copy."""
        with self._lock:
            self.add_repo(full_name)
            self._contents[(full_name, path.strip("/"), ref)] = text

    def add_collaborator(self, full_name: str, login: str, permission: str) -> None:
        """``login``'s role on the repository: admin, maintain, write, triage or read."""
        with self._lock:
            self._collaborators[(full_name, login)] = permission

    def add_manifest_code(self, code: str, manifest: dict[str, Any]) -> None:
        """A code GitHub issues when someone confirms a manifest (valid once)."""
        with self._lock:
            self._manifest_codes[code] = manifest

    def add_delivery(
        self,
        *,
        id: int | None = None,
        guid: str | None = None,
        status_code: int = 200,
        event: str = "pull_request",
        action: str | None = "opened",
        redelivery: bool = False,
        delivered_at: float | None = None,
        installation_id: int | None = None,
        repository_id: int | None = None,
    ) -> dict[str, Any]:
        """A webhook delivery of the app (GET /app/hook/deliveries lists newest first)."""
        with self._lock:
            delivery = {
                "id": id if id is not None else next(self._ids),
                "guid": guid or _guid(),
                "delivered_at": iso(delivered_at if delivered_at is not None else time.time()),
                "redelivery": redelivery,
                "duration": 0.12,
                "status": "OK" if 200 <= status_code < 300 else "Invalid HTTP Response: 500",
                "status_code": status_code,
                "event": event,
                "action": action,
                "installation_id": installation_id,
                "repository_id": repository_id,
                "throttled_at": None,
            }
            self._deliveries.append(delivery)
            return dict(delivery)

    def seed_review(
        self,
        full_name: str,
        number: int,
        *,
        body: str = "",
        state: str = "COMMENTED",
        commit_id: str | None = None,
        user_login: str = "github-actions[bot]",
        comments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An existing review, stored without validation (comments: path, line, side, body)."""
        with self._lock:
            pull = self._pulls[(full_name, number)]
            user = self._user_for_login(user_login)
            sha = commit_id or pull.head_sha
            review = self._store_review(pull, user, state, body, sha)
            for c in comments or []:
                side = c.get("side", "RIGHT")
                patch = pull.patches.get((sha, c["path"]))
                row = patch.row(side, c["line"]) if patch and "line" in c else None
                self._store_review_comment(pull, review, user, sha, c, side, patch, row)
            return dict(review)

    def seed_issue_comment(
        self, full_name: str, number: int, body: str, *, user_login: str = "github-actions[bot]"
    ) -> dict[str, Any]:
        with self._lock:
            pull = self._pulls[(full_name, number)]
            return dict(self._store_issue_comment(pull, self._user_for_login(user_login), body))

    # --- fault injection -----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests matching (``method`` or "*", ``re.search`` on the path
        without query) get this answer instead, before authentication, and change nothing."""
        if body is None:
            body = {
                "message": _REASONS.get(status, "Error"),
                "documentation_url": DOCS,
                "status": str(status),
            }
        with self._lock:
            self._faults.append(
                Fault(method.upper(), re.compile(path_regex), status, body, headers or {}, times)
            )

    def secondary_rate_limit(
        self,
        method: str,
        path_regex: str,
        *,
        retry_after: int | None = 60,
        status: int = 403,
        times: int = 1,
    ) -> None:
        """GitHub's secondary rate limit answer (403 or 429, ``retry-after`` unless None)."""
        body = {
            "message": SECONDARY_MESSAGE.format(request_id=_request_id()),
            "documentation_url": DOCS_SECONDARY,
            "status": str(status),
        }
        headers = {"x-ratelimit-remaining": str(RATE_LIMIT - 1)}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        self.fail_next(method, path_regex, status, body=body, headers=headers, times=times)

    def primary_rate_limit(
        self,
        method: str,
        path_regex: str,
        *,
        reset_in: int = 60,
        status: int = 403,
        times: int = 1,
    ) -> None:
        """The primary limit exhausted: ``x-ratelimit-remaining: 0`` and the reset time."""
        body = {
            "message": "API rate limit exceeded for installation ID 1.",
            "documentation_url": DOCS_PRIMARY,
            "status": str(status),
        }
        headers = {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(RATE_LIMIT),
            "x-ratelimit-reset": str(int(time.time()) + reset_in),
        }
        self.fail_next(method, path_regex, status, body=body, headers=headers, times=times)

    def move_head_on(
        self,
        method: str,
        path_regex: str,
        full_name: str,
        number: int,
        new_sha: str,
        files: list[dict[str, Any]],
        *,
        times: int = 1,
    ) -> None:
        """When a matching request arrives, first push ``new_sha`` (a push racing the bot)."""
        with self._lock:
            self._moves.append(
                HeadMove(
                    method.upper(),
                    re.compile(path_regex),
                    full_name,
                    number,
                    new_sha,
                    files,
                    times,
                )
            )

    # --- inspection ----------------------------------------------------------------------------

    def reads(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET" or r.path == "/graphql"]

    def writes(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method in _WRITES and r.path != "/graphql"]

    def reviews(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._reviews if r["_key"] == (full_name, number)]

    def review_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._review_comments if c["_key"] == (full_name, number)]

    def issue_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._issue_comments if c["_key"] == (full_name, number)]

    def check_runs(self, full_name: str, head_sha: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(c)
                for c in self._check_runs
                if c["_repo"] == full_name and head_sha in (None, c["head_sha"])
            ]

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def pull(self, full_name: str, number: int) -> dict[str, Any]:
        with self._lock:
            return self._pull_json(self._pulls[(full_name, number)])

    # --- internals: storage --------------------------------------------------------------------

    def _store_head(self, pull: Pull, sha: str, files: list[dict[str, Any]]) -> None:
        stored = []
        for f in files:
            patch_text = f.get("patch")
            patch = parse_patch(patch_text) if patch_text is not None else None
            pull.patches[(sha, f["filename"])] = patch
            stored.append(self._file_json(pull.repo.full_name, sha, f, patch))
        pull.heads[sha] = stored

    def _file_json(
        self, full_name: str, sha: str, f: dict[str, Any], patch: Patch | None
    ) -> dict[str, Any]:
        name = f["filename"]
        additions = f.get("additions", patch.additions if patch else 0)
        deletions = f.get("deletions", patch.deletions if patch else 0)
        out: dict[str, Any] = {
            "sha": f.get("sha") or blob_sha(f"{sha}:{name}"),
            "filename": name,
            "status": f.get("status", "modified"),
            "additions": additions,
            "deletions": deletions,
            "changes": f.get("changes", additions + deletions),
            "blob_url": f"https://github.com/{full_name}/blob/{sha}/{quote(name)}",
            "raw_url": f"https://github.com/{full_name}/raw/{sha}/{quote(name)}",
            "contents_url": f"{self.url}/repos/{full_name}/contents/{quote(name)}?ref={sha}",
        }
        if f.get("patch") is not None:
            out["patch"] = f["patch"]
        if f.get("previous_filename"):
            out["previous_filename"] = f["previous_filename"]
        return out

    def _user_for_login(self, login: str) -> dict[str, Any]:
        for tok in self._tokens.values():
            if tok.login == login:
                return self._user_json(tok.login, tok.user_id, tok.user_type)
        kind = "Bot" if login.endswith("[bot]") else "User"
        return self._user_json(login, 1000 + sum(map(ord, login)), kind)

    def _store_review(
        self, pull: Pull, user: dict[str, Any], state: str, body: str, sha: str
    ) -> dict[str, Any]:
        rid = next(self._ids)
        name = pull.repo.full_name
        html = f"https://github.com/{name}/pull/{pull.number}#pullrequestreview-{rid}"
        pr_url = f"{self.url}/repos/{name}/pulls/{pull.number}"
        review: dict[str, Any] = {
            "id": rid,
            "node_id": _node_id("PRR", rid),
            "user": user,
            "body": body,
            "state": state,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "commit_id": sha,
        }
        if state != "PENDING":
            review["submitted_at"] = iso(time.time())
        self._reviews.append({**review, "_key": (name, pull.number)})
        return review

    def _store_review_comment(
        self,
        pull: Pull,
        review: dict[str, Any],
        user: dict[str, Any],
        sha: str,
        c: dict[str, Any],
        side: str,
        patch: Patch | None,
        row: Row | None,
    ) -> dict[str, Any]:
        cid = next(self._ids)
        name = pull.repo.full_name
        now = iso(time.time())
        url = f"{self.url}/repos/{name}/pulls/comments/{cid}"
        html = f"https://github.com/{name}/pull/{pull.number}#discussion_r{cid}"
        pr_url = f"{self.url}/repos/{name}/pulls/{pull.number}"
        start = c.get("start_line")
        comment: dict[str, Any] = {
            "url": url,
            "pull_request_review_id": review["id"],
            "id": cid,
            "node_id": _node_id("PRRC", cid),
            "diff_hunk": patch.diff_hunk(row) if patch and row else "",
            "path": c["path"],
            "position": row.index if row else None,
            "original_position": row.index if row else None,
            "commit_id": sha,
            "original_commit_id": sha,
            "user": user,
            "body": c.get("body", ""),
            "created_at": now,
            "updated_at": now,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "pull_request": {"href": pr_url},
            },
            "start_line": start,
            "original_start_line": start,
            "start_side": c.get("start_side", side) if start is not None else None,
            "line": c.get("line"),
            "original_line": c.get("line"),
            "side": side,
            "subject_type": "line",
        }
        self._review_comments.append({**comment, "_key": (name, pull.number)})
        return comment

    def _store_issue_comment(self, pull: Pull, user: dict[str, Any], body: str) -> dict[str, Any]:
        cid = next(self._ids)
        name = pull.repo.full_name
        now = iso(time.time())
        comment = {
            "id": cid,
            "node_id": _node_id("IC", cid),
            "url": f"{self.url}/repos/{name}/issues/comments/{cid}",
            "html_url": f"https://github.com/{name}/pull/{pull.number}#issuecomment-{cid}",
            "issue_url": f"{self.url}/repos/{name}/issues/{pull.number}",
            "user": user,
            "body": body,
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
            "performed_via_github_app": None,
            "_key": (name, pull.number),
        }
        self._issue_comments.append(comment)
        return comment

    # --- internals: JSON shapes ----------------------------------------------------------------

    def _user_json(self, login: str, uid: int, kind: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": f"{self.url}/users/{quote(login)}",
            "html_url": f"https://github.com/{quote(login)}",
            "type": kind,
            "site_admin": False,
        }

    def _repo_json(self, repo: Repo, *, fork: bool = False) -> dict[str, Any]:
        owner, name = repo.full_name.split("/", 1)
        url = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": _node_id("R", repo.id),
            "name": name,
            "full_name": repo.full_name,
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "owner": self._user_json(owner, 2000 + sum(map(ord, owner)), "Organization"),
            "html_url": f"https://github.com/{repo.full_name}",
            "description": None,
            "fork": fork,
            "url": url,
            "pulls_url": f"{url}/pulls{{/number}}",
            "issues_url": f"{url}/issues{{/number}}",
            "contents_url": f"{url}/contents/{{+path}}",
            "default_branch": repo.default_branch,
            "archived": False,
            "disabled": False,
            "created_at": iso(self._epoch),
            "updated_at": iso(self._epoch),
            "pushed_at": iso(self._epoch),
        }

    def _branch_json(self, pull: Pull, full_name: str, ref: str, sha: str) -> dict[str, Any]:
        repo = self._repos.get(full_name) or Repo(
            full_name, 3000 + sum(map(ord, full_name)), "main", False
        )
        owner = full_name.split("/", 1)[0]
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self._user_json(owner, 2000 + sum(map(ord, owner)), "Organization"),
            "repo": self._repo_json(repo, fork=full_name != pull.repo.full_name),
        }

    def _pull_json(self, pull: Pull) -> dict[str, Any]:
        name = pull.repo.full_name
        url = f"{self.url}/repos/{name}/pulls/{pull.number}"
        html = f"https://github.com/{name}/pull/{pull.number}"
        files = pull.heads[pull.head_sha]
        key = (name, pull.number)
        merged = pull.state == "merged"
        closed = pull.state != "open"
        return {
            "url": url,
            "id": pull.id,
            "node_id": _node_id("PR", pull.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{self.url}/repos/{name}/issues/{pull.number}",
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "comments_url": f"{self.url}/repos/{name}/issues/{pull.number}/comments",
            "statuses_url": f"{self.url}/repos/{name}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": "closed" if closed else "open",
            "locked": False,
            "title": pull.title,
            "user": self._user_for_login(pull.user_login),
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "created_at": iso(pull.created),
            "updated_at": iso(pull.updated),
            "closed_at": iso(pull.updated) if closed else None,
            "merged_at": iso(pull.updated) if merged else None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "draft": pull.draft,
            "head": self._branch_json(pull, pull.head_repo, pull.head_ref, pull.head_sha),
            "base": self._branch_json(pull, name, pull.base_ref, pull.base_sha),
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": f"{self.url}/repos/{name}/issues/{pull.number}"},
                "comments": {"href": f"{self.url}/repos/{name}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "commits": {"href": f"{url}/commits"},
            },
            "author_association": "CONTRIBUTOR",
            "auto_merge": None,
            "merged": merged,
            "mergeable": None,
            "rebaseable": None,
            "mergeable_state": "unknown",
            "merged_by": None,
            "comments": sum(1 for c in self._issue_comments if c["_key"] == key),
            "review_comments": sum(1 for c in self._review_comments if c["_key"] == key),
            "maintainer_can_modify": False,
            "commits": len(pull.heads),
            "additions": sum(f["additions"] for f in files),
            "deletions": sum(f["deletions"] for f in files),
            "changed_files": len(files),
        }

    def _installation_json(self, inst: Installation) -> dict[str, Any]:
        app = self._apps.get(inst.app_id)
        account = self._user_json(inst.account, 2000 + sum(map(ord, inst.account)), "Organization")
        return {
            "id": inst.id,
            "account": account,
            "app_id": inst.app_id,
            "app_slug": app.slug if app else "app",
            "target_id": account["id"],
            "target_type": "Organization",
            "repository_selection": "all" if inst.repositories is None else "selected",
            "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"https://github.com/organizations/{inst.account}/settings/installations/"
            f"{inst.id}",
            "permissions": dict(inst.permissions),
            "events": ["pull_request", "issue_comment"],
            "created_at": iso(self._epoch),
            "updated_at": iso(self._epoch),
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    # --- internals: HTTP -----------------------------------------------------------------------

    def _route_table(self) -> list[_Route]:
        table: list[tuple[str, str, Callable[[_Ctx], Response], str]] = [
            ("GET", _R, self._get_repo, "metadata"),
            ("GET", _R + r"/pulls/(?P<number>\d+)", self._get_pull, "pull_requests"),
            ("GET", _R + r"/pulls/(?P<number>\d+)/files", self._list_files, "pull_requests"),
            ("GET", _R + r"/pulls/(?P<number>\d+)/commits", self._list_commits, "pull_requests"),
            (
                "GET",
                _R + r"/pulls/(?P<number>\d+)/comments",
                self._list_review_comments,
                "pull_requests",
            ),
            ("GET", _R + r"/pulls/(?P<number>\d+)/reviews", self._list_reviews, "pull_requests"),
            (
                "GET",
                _R + r"/pulls/(?P<number>\d+)/reviews/(?P<id>\d+)",
                self._get_review,
                "pull_requests",
            ),
            ("POST", _R + r"/pulls/(?P<number>\d+)/reviews", self._create_review, "pull_requests"),
            ("GET", _R + r"/pulls/comments/(?P<id>\d+)", self._get_review_comment, "pull_requests"),
            (
                "PATCH",
                _R + r"/pulls/comments/(?P<id>\d+)",
                self._edit_review_comment,
                "pull_requests",
            ),
            (
                "DELETE",
                _R + r"/pulls/comments/(?P<id>\d+)",
                self._delete_review_comment,
                "pull_requests",
            ),
            ("GET", _R + r"/issues/(?P<number>\d+)", self._get_issue, "issues"),
            ("GET", _R + r"/issues/(?P<number>\d+)/comments", self._list_issue_comments, "issues"),
            (
                "POST",
                _R + r"/issues/(?P<number>\d+)/comments",
                self._create_issue_comment,
                "issues",
            ),
            ("GET", _R + r"/issues/comments/(?P<id>\d+)", self._get_issue_comment, "issues"),
            ("POST", _R + r"/issues/comments/(?P<id>\d+)/reactions", self._react, "issues"),
            (
                "POST",
                _R + r"/pulls/(?P<number>\d+)/comments/(?P<id>\d+)/replies",
                self._reply,
                "pull_requests",
            ),
            (
                "GET",
                _R + r"/collaborators/(?P<login>[^/]+)/permission",
                self._collaborator_permission,
                "metadata",
            ),
            ("PATCH", _R + r"/issues/comments/(?P<id>\d+)", self._edit_issue_comment, "issues"),
            ("DELETE", _R + r"/issues/comments/(?P<id>\d+)", self._delete_issue_comment, "issues"),
            ("GET", _R + r"/commits/(?P<sha>[^/]+)", self._get_commit, "contents"),
            ("GET", _R + r"/contents/(?P<path>.*)", self._get_contents, "contents"),
            ("POST", _R + r"/check-runs", self._create_check_run, "checks"),
            (
                "GET",
                _R + r"/commits/(?P<sha>[^/]+)/check-runs",
                self._list_check_runs,
                "checks",
            ),
            ("GET", _R + r"/check-runs/(?P<id>\d+)", self._get_check_run, "checks"),
            ("PATCH", _R + r"/check-runs/(?P<id>\d+)", self._update_check_run, "checks"),
            ("GET", _R + r"/installation", self._get_repo_installation, "app"),
            ("GET", r"/app", self._get_app, "app"),
            ("GET", r"/app/installations/(?P<id>\d+)", self._get_installation, "app"),
            (
                "POST",
                r"/app/installations/(?P<id>\d+)/access_tokens",
                self._create_access_token,
                "app",
            ),
            ("GET", r"/app/hook/deliveries", self._list_deliveries, "app"),
            ("GET", r"/app/hook/deliveries/(?P<id>\d+)", self._get_delivery, "app"),
            ("POST", r"/app/hook/deliveries/(?P<id>\d+)/attempts", self._redeliver, "app"),
            ("POST", r"/graphql", self._graphql, "graphql"),
            ("POST", r"/app-manifests/(?P<code>[^/]+)/conversions", self._convert, "public"),
            ("GET", r"/user", self._get_user, "user"),
            ("GET", r"/rate_limit", self._get_rate_limit, "user"),
        ]
        return [
            _Route(method, re.compile(pattern), handler, perm, method in _WRITES)
            for method, pattern, handler, perm in table
        ]

    def _handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response:
        """Everything but the socket: record, inject, authenticate, route."""
        split = urlsplit(target)
        path = unquote(split.path) if "/contents/" not in split.path else split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad_json = True
        shown = dict(headers)
        if "authorization" in shown:
            scheme = shown["authorization"].split(" ", 1)[0]
            shown["authorization"] = f"{scheme} [redacted]"
        rec = Recorded(method, split.path, query, shown, body, ts=time.monotonic())
        with self._lock:
            self.requests.append(rec)
            try:
                resp, token = self._respond(rec, method, path, query, headers, body, bad_json)
            except Exception as e:  # noqa: BLE001 (a bug of the fake: visible, not a hang)
                self.errors.append(traceback.format_exc())
                resp, token = Response(500, {"message": f"fake GitHub error: {e!r}"}), None
            rec.status = resp.status
            self._finish_headers(resp, token)
            return resp

    def _respond(
        self,
        rec: Recorded,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
        bad_json: bool,
    ) -> tuple[Response, Token | None]:
        for move in self._moves:
            if move.times > 0 and move.method in ("*", method) and move.pattern.search(path):
                move.times -= 1
                self.push(move.full_name, move.number, move.sha, move.files)
        for fault in self._faults:
            if fault.times > 0 and fault.method in ("*", method) and fault.pattern.search(path):
                fault.times -= 1
                return Response(fault.status, fault.body, dict(fault.headers)), None
        path = self._dealias(path)
        route, params = self._match(method, path)
        if route is None:
            return Response(404, _not_found().body), None
        ctx = _Ctx(method, path, query, body, headers, params)
        try:
            self._authenticate(ctx, route)
            rec.actor = ctx.token.login if ctx.token else (ctx.app.slug if ctx.app else None)
            if bad_json:
                raise _error(400, "Problems parsing JSON")
            if method in ("POST", "PATCH"):
                if body is None:
                    ctx.body = {}
                elif not isinstance(body, dict):
                    raise _error(400, "Body should be a JSON object")
            return route.handler(ctx), ctx.token
        except ApiError as e:
            return Response(e.status, e.body, e.headers), ctx.token

    def _dealias(self, path: str) -> str:
        """``/repositories/{id}/...`` (the form of GitHub's Link URLs) to ``/repos/{o}/{r}/...``."""
        m = re.match(r"^/repositories/(\d+)(/.*)?$", path)
        if m:
            for repo in self._repos.values():
                if repo.id == int(m.group(1)):
                    return f"/repos/{repo.full_name}{m.group(2) or ''}"
        return path

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method != method:
                continue
            m = route.pattern.fullmatch(path)
            if m:
                return route, {k: v for k, v in m.groupdict().items() if v is not None}
        return None, {}

    def _authenticate(self, ctx: _Ctx, route: _Route) -> None:
        if route.permission == "public":
            return  # the manifest conversion: the one-hour code is the credential
        auth = ctx.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if not auth:
            raise _error(401, "Requires authentication")
        if route.permission == "app":
            ctx.app = self._verify_jwt(value)
            return
        if not value:
            raise _error(401, "Requires authentication")
        token = self._tokens.get(value) if scheme.lower() in ("token", "bearer") else None
        if token is None or (token.expires_at is not None and token.expires_at <= time.time()):
            raise _error(401, "Bad credentials")
        ctx.token = token
        token.used += 1
        if route.permission == "user":
            if route.handler == self._get_user and token.installation:
                raise _forbidden()
            return
        if route.permission == "graphql":
            return  # per repository, in the resolver: GraphQL answers 200 with errors
        name = ctx.repo_name()
        if name not in self._repos or (
            token.repositories is not None and name not in token.repositories
        ):
            raise _not_found()
        if not self._permitted(token, route.permission, write=route.write):
            raise _forbidden()

    @staticmethod
    def _permitted(token: Token, permission: str, *, write: bool) -> bool:
        if write and not token.write:
            return False
        if token.permissions is None:
            return True
        if permission == "metadata" and not write:
            return True
        wanted = {"write"} if write else {"read", "write"}
        levels = {token.permissions.get(permission)}
        if permission == "issues":  # comments on a pull request: either permission will do
            levels.add(token.permissions.get("pull_requests"))
        return bool(levels & wanted)

    def _verify_jwt(self, value: str) -> App:
        try:
            header = jwt.get_unverified_header(value)
            claims = jwt.decode(value, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _error(401, "A JSON web token could not be decoded") from None
        if header.get("alg") != "RS256":
            raise _error(401, "A JSON web token could not be decoded")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now + 60:
            raise _error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued.",
            )
        if not isinstance(exp, int) or exp <= now:
            raise _error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires.",
            )
        if exp > now + 600 + 60:
            raise _error(401, "'Expiration time' claim ('exp') is too far in the future.")
        iss = str(claims.get("iss"))
        app = next(
            (a for a in self._apps.values() if iss in (str(a.app_id), a.client_id)),
            None,
        )
        if app is None:
            raise _error(401, "A JSON web token could not be decoded")
        if app.public_key is not None:
            try:
                jwt.decode(
                    value, app.public_key, algorithms=["RS256"], options={"verify_iat": False}
                )
            except jwt.PyJWTError:
                raise _error(401, "A JSON web token could not be decoded") from None
        return app

    def _finish_headers(self, resp: Response, token: Token | None) -> None:
        used = token.used if token else 0
        base = {
            "x-github-request-id": _request_id(),
            "x-github-api-version-selected": self.api_version,
            "x-github-media-type": "github.v3; format=json",
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(RATE_LIMIT - used, 0)),
            "x-ratelimit-reset": str(int(self._epoch) + 3600),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }
        base.update(resp.headers)
        resp.headers = base

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30
            # one segment per response (headers and body), sent at once: no 40 ms delayed-ACK
            # stall per request on a kept-alive connection
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                resp = fake._handle(self.command, self.path, headers, raw)
                if resp.raw is not None:
                    data = resp.raw
                elif resp.status == 204 or resp.body is None:
                    data = b""
                else:
                    data = json.dumps(resp.body).encode()
                self.send_response(resp.status)
                if data or resp.status != 204:
                    self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        return Handler

    # --- internals: lookups --------------------------------------------------------------------

    def _pull_of(self, ctx: _Ctx) -> Pull:
        pull = self._pulls.get((ctx.repo_name(), int(ctx.params["number"])))
        if pull is None:
            raise _not_found()
        return pull

    def _actor(self, ctx: _Ctx) -> dict[str, Any]:
        assert ctx.token is not None
        return self._user_json(ctx.token.login, ctx.token.user_id, ctx.token.user_type)

    def _paginate(self, ctx: _Ctx, items: list[Any], cap: int | None = None) -> Response:
        """GitHub's page-number pagination: ``per_page`` (default 30, at most 100), ``page``,
        and a ``Link`` header (prev, next, last, first) with ``/repositories/{id}`` URLs."""
        per_page = _int(ctx.query.get("per_page"), 30)
        per_page = 30 if per_page < 1 else min(per_page, 100)
        page = max(_int(ctx.query.get("page"), 1), 1)
        if cap is not None:
            items = items[:cap]
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = [_public(i) for i in items[(page - 1) * per_page : page * per_page]]
        base = ctx.path
        repo = self._repos.get(ctx.repo_name()) if "owner" in ctx.params else None
        if repo is not None:
            base = f"/repositories/{repo.id}" + ctx.path[len(f"/repos/{repo.full_name}") :]

        def link(n: int, rel: str) -> str:
            query = {**ctx.query, "page": str(n)}
            return f'<{self.url}{base}?{urlencode(query)}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels.append(link(min(page - 1, last), "prev"))
        if page < last:
            rels.append(link(page + 1, "next"))
            rels.append(link(last, "last"))
        if page > 1:
            rels.append(link(1, "first"))
        headers = {"link": ", ".join(rels)} if rels else {}
        return Response(200, chunk, headers)

    def _count_creation(self) -> None:
        """GitHub's secondary limit on content creation (per minute, per hour)."""
        now = time.monotonic()
        self._created = [t for t in self._created if now - t < 3600]
        if self.content_limits is not None:
            per_minute, per_hour = self.content_limits
            last_minute = sum(1 for t in self._created if now - t < 60)
            if last_minute >= per_minute or len(self._created) >= per_hour:
                raise ApiError(
                    403,
                    {
                        "message": SECONDARY_MESSAGE.format(request_id=_request_id()),
                        "documentation_url": DOCS_SECONDARY,
                        "status": "403",
                    },
                    {"retry-after": "60"},
                )
        self._created.append(now)

    # --- handlers: repository and pull request -------------------------------------------------

    def _get_repo(self, ctx: _Ctx) -> Response:
        return Response(200, self._repo_json(self._repos[ctx.repo_name()]))

    def _get_pull(self, ctx: _Ctx) -> Response:
        pull = self._pull_of(ctx)
        accept = ctx.headers.get("accept", "")
        if "application/vnd.github.diff" in accept or "application/vnd.github.v3.diff" in accept:
            return self._pull_diff(pull)
        return Response(200, self._pull_json(pull))

    def _pull_diff(self, pull: Pull) -> Response:
        files = pull.heads[pull.head_sha]
        lines = sum(f["changes"] for f in files)
        docs = "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files"
        too_large = [{"resource": "PullRequest", "field": "diff", "code": "too_large"}]
        if len(files) > DIFF_MAX_FILES:
            raise _error(
                406,
                f"Sorry, the diff exceeded the maximum number of files ({DIFF_MAX_FILES}). "
                "Consider using 'List pull requests files' API or locally cloning the "
                "repository instead.",
                docs,
                errors=too_large,
            )
        if lines > DIFF_MAX_LINES:
            raise _error(
                406,
                f"Sorry, the diff exceeded the maximum number of lines ({DIFF_MAX_LINES}). "
                "Consider using 'List pull requests files' API or locally cloning the "
                "repository instead.",
                docs,
                errors=too_large,
            )
        out = []
        for f in files:
            old = f.get("previous_filename") or f["filename"]
            new = f["filename"]
            out.append(f"diff --git a/{old} b/{new}")
            if "patch" not in f:
                out.append(f"Binary files a/{old} and b/{new} differ")
                continue
            out.append("--- /dev/null" if f["status"] == "added" else f"--- a/{old}")
            out.append("+++ /dev/null" if f["status"] == "removed" else f"+++ b/{new}")
            out.append(f["patch"])
        text = "\n".join(out) + "\n"
        return Response(
            200, raw=text.encode(), content_type="application/vnd.github.diff; charset=utf-8"
        )

    def _list_files(self, ctx: _Ctx) -> Response:
        pull = self._pull_of(ctx)
        return self._paginate(ctx, pull.heads[pull.head_sha], cap=FILES_MAX)

    def _list_commits(self, ctx: _Ctx) -> Response:
        pull = self._pull_of(ctx)
        return self._paginate(ctx, [self._commit_json(pull, sha) for sha in pull.heads])

    def _commit_json(self, pull: Pull, sha: str) -> dict[str, Any]:
        name = pull.repo.full_name
        person = {"name": "octocat", "email": "octocat@example.com", "date": iso(pull.updated)}
        shas = list(pull.heads)
        parents = [shas[shas.index(sha) - 1]] if shas.index(sha) > 0 else [pull.base_sha]
        return {
            "sha": sha,
            "node_id": _node_id("C", int(sha[:8], 16) if _is_hex(sha[:8]) else 1),
            "url": f"{self.url}/repos/{name}/commits/{sha}",
            "html_url": f"https://github.com/{name}/commit/{sha}",
            "commit": {
                "message": f"commit {sha[:7]}",
                "author": person,
                "committer": person,
                "tree": {"sha": blob_sha(sha), "url": f"{self.url}/repos/{name}/git/trees/x"},
                "url": f"{self.url}/repos/{name}/git/commits/{sha}",
            },
            "author": None,
            "committer": None,
            "parents": [{"sha": p, "url": f"{self.url}/repos/{name}/commits/{p}"} for p in parents],
        }

    def _get_commit(self, ctx: _Ctx) -> Response:
        sha = ctx.params["sha"]
        for pull in self._pulls.values():
            if pull.repo.full_name == ctx.repo_name() and sha in pull.heads:
                data = self._commit_json(pull, sha)
                data["files"] = [dict(f) for f in pull.heads[sha]]
                return Response(200, data)
        raise _error(422, f"No commit found for SHA: {sha}")

    # --- handlers: reviews ---------------------------------------------------------------------

    def _list_reviews(self, ctx: _Ctx) -> Response:
        key = (ctx.repo_name(), self._pull_of(ctx).number)
        return self._paginate(ctx, [r for r in self._reviews if r["_key"] == key])

    def _get_review(self, ctx: _Ctx) -> Response:
        key = (ctx.repo_name(), self._pull_of(ctx).number)
        for r in self._reviews:
            if r["_key"] == key and r["id"] == int(ctx.params["id"]):
                return Response(200, _public(r))
        raise _not_found()

    def _list_review_comments(self, ctx: _Ctx) -> Response:
        """Comments of submitted reviews (a pending review's comments are not listed)."""
        key = (ctx.repo_name(), self._pull_of(ctx).number)
        pending = {r["id"] for r in self._reviews if r["state"] == "PENDING"}
        return self._paginate(
            ctx,
            [
                c
                for c in self._review_comments
                if c["_key"] == key and c["pull_request_review_id"] not in pending
            ],
        )

    def _create_review(self, ctx: _Ctx) -> Response:
        pull = self._pull_of(ctx)
        body = ctx.body
        event = body.get("event")
        if event is not None and event not in ("APPROVE", "REQUEST_CHANGES", "COMMENT"):
            raise _unprocessable(
                f"Event must be one of APPROVE, REQUEST_CHANGES or COMMENT, not {event!r}"
            )  # unverified text
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            raise _invalid(f"For 'properties/body', {json.dumps(text)} is not a string.")
        if text is not None and len(text) > BODY_MAX:
            raise _unprocessable(BODY_TOO_LONG)
        if event in ("COMMENT", "REQUEST_CHANGES") and not (text or "").strip():
            raise _unprocessable(BODY_REQUIRED)
        sha = body.get("commit_id") or pull.head_sha
        if not isinstance(sha, str) or sha not in pull.heads:
            raise _unprocessable(f"No commit found for SHA: {sha}")
        comments = body.get("comments", [])
        if not isinstance(comments, list):
            raise _invalid(f"For 'properties/comments', {json.dumps(comments)} is not an array.")
        assert ctx.token is not None
        author = ctx.token.login
        if event == "APPROVE" and author == pull.user_login:
            raise _unprocessable(OWN_APPROVE)
        if event == "REQUEST_CHANGES" and author == pull.user_login:
            raise _unprocessable(OWN_REQUEST_CHANGES)
        if event is None and any(
            r["_key"] == (pull.repo.full_name, pull.number)
            and r["state"] == "PENDING"
            and r["user"]["login"] == author
            for r in self._reviews
        ):
            raise _unprocessable(ONE_PENDING)
        placed = [self._place(pull, sha, c) for c in comments]  # all or nothing: check all first
        if event is not None:
            self._count_creation()
        state = {
            None: "PENDING",
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
        }[event]
        user = self._actor(ctx)
        review = self._store_review(pull, user, state, text or "", sha)
        for comment, side, patch, row in placed:
            self._store_review_comment(pull, review, user, sha, comment, side, patch, row)
        return Response(200, review)

    def _place(
        self, pull: Pull, sha: str, c: Any
    ) -> tuple[dict[str, Any], str, Patch | None, Row | None]:
        """Validate one review comment against the diff of ``sha``: GitHub's rules and texts."""
        if not isinstance(c, dict):
            raise _invalid(f"For 'items', {json.dumps(c)} is not an object.")
        for key in ("path", "body"):
            if key not in c:
                raise _invalid(f'"{key}" wasn\'t supplied.')
            if not isinstance(c[key], str):
                raise _invalid(f"For 'properties/{key}', {json.dumps(c[key])} is not a string.")
        for key in ("line", "start_line", "position"):
            if key in c and c[key] is not None and (type(c[key]) is not int):
                raise _invalid(f"For 'properties/{key}', {json.dumps(c[key])} is not an integer.")
        for key in ("side", "start_side"):
            if key in c and c[key] is not None and c[key] not in ("LEFT", "RIGHT"):
                raise _invalid(
                    f"For 'properties/{key}', {json.dumps(c[key])} is not one of "
                    '["LEFT", "RIGHT"].'
                )
        if len(c["body"]) > BODY_MAX:
            raise _unprocessable(COMMENT_BODY_TOO_LONG)
        files = {f["filename"] for f in pull.heads[sha]}
        path = c["path"]
        if path not in files:
            raise _unprocessable(PATH_UNRESOLVED)
        patch = pull.patches[(sha, path)]
        comment = dict(c)
        line = c.get("line")
        if line is None and c.get("position") is not None:
            # deprecated: the position in the file's diff (the line below the first @@ is 1)
            pos = c["position"]
            row = patch.rows[pos] if patch and 0 < pos < len(patch.rows) else None
            if row is None or row.kind not in "+- ":
                raise _unprocessable(LINE_UNRESOLVED)
            side = "LEFT" if row.kind == "-" else "RIGHT"
            comment["line"] = row.old if side == "LEFT" else row.new
            return comment, side, patch, row
        if line is None:
            raise _unprocessable(LINE_UNRESOLVED)
        side = c.get("side") or "RIGHT"
        errors = []
        end = patch.row(side, line) if patch else None
        if end is None:
            errors.append(LINE_NOT_IN_DIFF)
        start_line = c.get("start_line")
        if start_line is not None:
            start_side = c.get("start_side") or side
            start = patch.row(start_side, start_line) if patch else None
            if start is None or end is None or start.hunk != end.hunk:
                if start_side == side and start_line >= line:
                    errors.append(START_NOT_BEFORE)
                errors.append(START_NOT_IN_HUNK)
            elif start.index >= end.index:
                errors.append(START_NOT_BEFORE)
            comment["start_side"] = start_side
        if end is None:
            errors.append(HUNK_BLANK)
        if errors:
            raise _unprocessable(to_sentence(errors))
        return comment, side, patch, end

    def _find_review_comment(self, ctx: _Ctx) -> dict[str, Any]:
        cid = int(ctx.params["id"])
        for c in self._review_comments:
            if c["id"] == cid and c["_key"][0] == ctx.repo_name():
                return c
        raise _not_found()

    def _get_review_comment(self, ctx: _Ctx) -> Response:
        return Response(200, _public(self._find_review_comment(ctx)))

    def _edit_review_comment(self, ctx: _Ctx) -> Response:
        c = self._find_review_comment(ctx)
        text = ctx.body.get("body")
        if not isinstance(text, str):
            raise _invalid('"body" wasn\'t supplied.')
        if len(text) > BODY_MAX:
            raise _unprocessable(COMMENT_BODY_TOO_LONG)
        c["body"] = text
        c["updated_at"] = iso(time.time())
        return Response(200, _public(c))

    def _delete_review_comment(self, ctx: _Ctx) -> Response:
        self._review_comments.remove(self._find_review_comment(ctx))
        return Response(204)

    # --- handlers: issue comments --------------------------------------------------------------

    @staticmethod
    def _check_issue_body(ctx: _Ctx) -> str:
        text = ctx.body.get("body")
        if text is None:
            raise _invalid('"body" wasn\'t supplied.', DOCS_ISSUE_COMMENT)
        if not isinstance(text, str):
            raise _invalid(
                f"For 'properties/body', {json.dumps(text)} is not a string.", DOCS_ISSUE_COMMENT
            )
        if len(text) > BODY_MAX:
            raise _error(
                422,
                "Validation Failed",
                DOCS_ISSUE_COMMENT,
                errors=[
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": BODY_TOO_LONG,
                    }
                ],
            )
        return text

    def _get_issue(self, ctx: _Ctx) -> Response:
        """A pull request seen as an issue (with its ``pull_request`` links)."""
        pull = self._pull_of(ctx)
        pr = self._pull_json(pull)
        return Response(
            200,
            {
                "url": pr["issue_url"],
                "id": pull.id + 1,
                "node_id": _node_id("I", pull.id),
                "number": pull.number,
                "title": pull.title,
                "user": pr["user"],
                "labels": [],
                "state": pr["state"],
                "locked": False,
                "assignee": None,
                "assignees": [],
                "milestone": None,
                "comments": pr["comments"],
                "created_at": pr["created_at"],
                "updated_at": pr["updated_at"],
                "closed_at": pr["closed_at"],
                "author_association": pr["author_association"],
                "body": pull.body,
                "html_url": pr["html_url"],
                "comments_url": pr["comments_url"],
                "repository_url": f"{self.url}/repos/{pull.repo.full_name}",
                "draft": pull.draft,
                "pull_request": {
                    "url": pr["url"],
                    "html_url": pr["html_url"],
                    "diff_url": pr["diff_url"],
                    "patch_url": pr["patch_url"],
                    "merged_at": pr["merged_at"],
                },
            },
        )

    def _list_issue_comments(self, ctx: _Ctx) -> Response:
        key = (ctx.repo_name(), self._pull_of(ctx).number)
        return self._paginate(ctx, [c for c in self._issue_comments if c["_key"] == key])

    def _create_issue_comment(self, ctx: _Ctx) -> Response:
        pull = self._pull_of(ctx)
        text = self._check_issue_body(ctx)
        self._count_creation()
        comment = self._store_issue_comment(pull, self._actor(ctx), text)
        return Response(201, _public(comment))

    def _find_issue_comment(self, ctx: _Ctx) -> dict[str, Any]:
        cid = int(ctx.params["id"])
        for c in self._issue_comments:
            if c["id"] == cid and c["_key"][0] == ctx.repo_name():
                return c
        raise _not_found()

    _REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})

    def _react(self, ctx: _Ctx) -> Response:
        comment = self._find_issue_comment(ctx)
        content = ctx.body.get("content")
        if content not in self._REACTIONS:
            raise _invalid(f"content {json.dumps(content)} is not a valid reaction")
        user = self._actor(ctx)
        reaction = {"id": next(self._ids), "content": content, "user": user}
        self.reactions.append({**reaction, "comment_id": comment["id"]})
        return Response(201, reaction)

    def add_review_reply(
        self, full_name: str, number: int, root_id: int, body: str, login: str
    ) -> dict[str, Any]:
        """A person's reply in a review thread (what pull_request_review_comment.created says)."""
        with self._lock:
            root = next(c for c in self._review_comments if c["id"] == root_id)
            return self._store_reply(root, self._user_for_login(login), body)

    def _store_reply(self, root: dict[str, Any], user: dict[str, Any], body: str) -> dict[str, Any]:
        cid = next(self._ids)
        url = root["url"].rsplit("/", 1)[0] + f"/{cid}"
        html = root["html_url"].rsplit("_r", 1)[0] + f"_r{cid}"
        reply = {
            **{k: v for k, v in root.items() if k != "_key"},
            "id": cid,
            "url": url,
            "html_url": html,
            "_links": {**root["_links"], "self": {"href": url}, "html": {"href": html}},
            "node_id": _node_id("PRRC", cid),
            "in_reply_to_id": root["id"],
            "user": user,
            "body": body,
            "created_at": iso(time.time()),
            "updated_at": iso(time.time()),
        }
        self._review_comments.append({**reply, "_key": root["_key"]})
        return reply

    def _reply(self, ctx: _Ctx) -> Response:
        pull = self._pull_of(ctx)
        rid = int(ctx.params["id"])
        root = next(
            (
                c
                for c in self._review_comments
                if c["id"] == rid and c["_key"] == (pull.repo.full_name, pull.number)
            ),
            None,
        )
        if root is None:
            raise _not_found()
        if root.get("in_reply_to_id"):
            raise _unprocessable("in_reply_to_id must be the thread's first comment")  # unverified
        body = self._check_issue_body(ctx)
        self._count_creation()
        return Response(201, _public(self._store_reply(root, self._actor(ctx), body)))

    def _collaborator_permission(self, ctx: _Ctx) -> Response:
        role = self._collaborators.get((ctx.repo_name(), unquote(ctx.params["login"])))
        if role is None:
            raise _not_found()
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        user = self._user_json(unquote(ctx.params["login"]), 1, "User")
        return Response(200, {"permission": legacy, "role_name": role, "user": user})

    def _get_issue_comment(self, ctx: _Ctx) -> Response:
        return Response(200, _public(self._find_issue_comment(ctx)))

    def _edit_issue_comment(self, ctx: _Ctx) -> Response:
        c = self._find_issue_comment(ctx)
        c["body"] = self._check_issue_body(ctx)
        c["updated_at"] = iso(time.time())
        return Response(200, _public(c))

    def _delete_issue_comment(self, ctx: _Ctx) -> Response:
        self._issue_comments.remove(self._find_issue_comment(ctx))
        return Response(204)

    # --- handlers: GraphQL (the one query shape depthgate sends: blobs of one repository) ------

    _GQL_FIELD = re.compile(r"(\w+): object\((oid|expression): \$(\w+)\) \{ \.\.\.(\w+) \}")
    _GQL_BLOB_FIELDS = frozenset({"oid", "byteSize", "isBinary", "isTruncated", "text"})

    def _graphql(self, ctx: _Ctx) -> Response:
        """Parses the query itself (aliases, ``object(oid:|expression:)``, a Blob fragment),
        reads the values from the variables as GitHub does, and answers like GitHub: 200 with
        ``errors`` for a bad query or a repository the token cannot see."""
        query = ctx.body.get("query") if isinstance(ctx.body, dict) else None
        variables = ctx.body.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            raise _error(400, "Problems parsing JSON")

        def errors(message: str, kind: str | None = None) -> Response:
            err: dict[str, Any] = {"message": message}
            if kind:
                err["type"] = kind
            return Response(200, {"errors": [err]})

        repo_m = re.search(r"repository\(owner: \$owner, name: \$name\) \{(.*)\} \}", query)
        frag_m = re.search(r"fragment (\w+) on Blob \{([^}]*)\}", query)
        if repo_m is None or frag_m is None:
            return errors("fake GitHub: unsupported query shape")
        wanted = set(frag_m.group(2).split())
        if not wanted <= self._GQL_BLOB_FIELDS:
            return errors(f"Field '{sorted(wanted - self._GQL_BLOB_FIELDS)[0]}' doesn't exist")
        fields = self._GQL_FIELD.findall(repo_m.group(1))
        if not fields or len(fields) != repo_m.group(1).count("object("):
            return errors("fake GitHub: unsupported field selection")
        name = f"{variables.get('owner')}/{variables.get('name')}"
        token = ctx.token
        assert token is not None
        if (
            name not in self._repos
            or (token.repositories is not None and name not in token.repositories)
            or not self._permitted(token, "contents", write=False)
        ):
            return errors(f"Could not resolve to a Repository with the name '{name}'.", "NOT_FOUND")
        self.graphql_blob_requests += len(fields)
        out: dict[str, Any] = {}
        for alias, how, var, frag in fields:
            if frag != frag_m.group(1):
                return errors(f"Fragment {frag} was used, but not defined")
            value = variables.get(var)
            if not isinstance(value, str):
                return errors(f"Variable ${var} of type String! was provided invalid value")
            text = self._blob_by_oid(name, value) if how == "oid" else self._blob_at(name, value)
            if text is None:
                out[alias] = None
                continue
            data = text if isinstance(text, bytes) else text.encode()
            binary = b"\0" in data
            node = {
                "oid": blob_sha(data),
                "byteSize": len(data),
                "isBinary": binary,
                "isTruncated": False,
                "text": None if binary else data.decode("utf-8", "replace"),
            }
            out[alias] = {k: v for k, v in node.items() if k in wanted}
        return Response(200, {"data": {"repository": out}})

    def _blob_at(self, name: str, expression: str) -> str | bytes | None:
        rev, sep, path = expression.partition(":")
        if not sep:
            return None
        text = self._contents.get((name, path.strip("/"), rev))
        return text if text is not None else self._contents.get((name, path.strip("/"), None))

    def _blob_by_oid(self, name: str, oid: str) -> str | bytes | None:
        for (repo, _, _), text in self._contents.items():
            if repo == name and blob_sha(text.encode()) == oid:
                return text
        return None

    def _convert(self, ctx: _Ctx) -> Response:
        manifest = self._manifest_codes.pop(ctx.params["code"], None)
        if manifest is None:
            raise _not_found()
        app_id = next(self._ids)
        slug = str(manifest.get("name", "app")).lower().replace(" ", "-")
        return Response(
            201,
            {
                "id": app_id,
                "slug": slug,
                "name": manifest.get("name"),
                "client_id": f"Iv1.{secrets.token_hex(8)}",
                "client_secret": secrets.token_hex(20),
                "webhook_secret": secrets.token_hex(20),
                "pem": "-----BEGIN RSA PRIVATE KEY-----\nfake\n-----END RSA PRIVATE KEY-----\n",
                "events": manifest.get("default_events", []),
                "permissions": manifest.get("default_permissions", {}),
            },
        )

    # --- handlers: contents and check runs -----------------------------------------------------

    def _get_contents(self, ctx: _Ctx) -> Response:
        name = ctx.repo_name()
        path = unquote(ctx.params["path"]).strip("/")
        ref = ctx.query.get("ref") or None
        text = self._contents.get((name, path, ref))
        if text is None:
            text = self._contents.get((name, path, None))
        if text is None:
            raise _not_found()
        data = text.encode()
        encoded = base64.encodebytes(data).decode()  # wrapped every 76 characters, like GitHub
        url = f"{self.url}/repos/{name}/contents/{quote(path)}"
        branch = ref or self._repos[name].default_branch
        sha = blob_sha(data)
        html = f"https://github.com/{name}/blob/{branch}/{quote(path)}"
        return Response(
            200,
            {
                "type": "file",
                "encoding": "base64",
                "size": len(data),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": encoded,
                "sha": sha,
                "url": f"{url}?ref={quote(branch)}",
                "git_url": f"{self.url}/repos/{name}/git/blobs/{sha}",
                "html_url": html,
                "download_url": f"https://raw.githubusercontent.com/{name}/{branch}/{quote(path)}",
                "_links": {"self": f"{url}?ref={quote(branch)}", "git": None, "html": html},
            },
        )

    def _check_output(self, ctx: _Ctx, run: dict[str, Any]) -> None:
        docs = "https://docs.github.com/rest/checks/runs#create-a-check-run"
        output = ctx.body.get("output")
        if output is None:
            return
        if not isinstance(output, dict):
            raise _invalid(f"For 'properties/output', {json.dumps(output)} is not an object.", docs)
        for key in ("title", "summary"):
            if not isinstance(output.get(key), str):
                raise _invalid(f'"{key}" wasn\'t supplied.', docs)
        for key in ("summary", "text"):
            value = output.get(key)
            if isinstance(value, str) and len(value) > CHECK_OUTPUT_MAX:
                raise _invalid(
                    f"Only {CHECK_OUTPUT_MAX} characters are allowed; {len(value)} were supplied.",
                    docs,
                )
        annotations = output.get("annotations") or []
        if len(annotations) > 50:
            raise _invalid(f"Only 50 items are allowed; {len(annotations)} were supplied.", docs)
        run["output"] = {
            "title": output["title"],
            "summary": output["summary"],
            "text": output.get("text"),
            "annotations_count": run["output"].get("annotations_count", 0) + len(annotations),
            "annotations_url": f"{run['url']}/annotations",
        }

    def _apply_check(self, ctx: _Ctx, run: dict[str, Any]) -> None:
        b = ctx.body
        if "name" in b:
            run["name"] = b["name"]
        if "status" in b:
            if b["status"] not in ("queued", "in_progress", "completed"):
                raise _invalid(f"For 'properties/status', {json.dumps(b['status'])} is not valid.")
            run["status"] = b["status"]
            if b["status"] != "completed" and b.get("conclusion") is None:
                # back to queued/in_progress (a re-run): no conclusion until it completes again
                # (unverified against GitHub: its docs describe no other outcome)
                run["conclusion"] = run["completed_at"] = None
        if "details_url" in b:
            run["details_url"] = b["details_url"]
        if "external_id" in b:
            run["external_id"] = b["external_id"]
        if b.get("conclusion") is not None:
            run["conclusion"] = b["conclusion"]
            run["status"] = "completed"
        if run["status"] == "completed" and run["conclusion"] is None:
            raise _unprocessable("Conclusion can't be blank")  # unverified text
        if run["status"] == "completed" and run["completed_at"] is None:
            run["completed_at"] = b.get("completed_at") or iso(time.time())
        self._check_output(ctx, run)

    def _create_check_run(self, ctx: _Ctx) -> Response:
        name = ctx.repo_name()
        for key in ("name", "head_sha"):
            if not isinstance(ctx.body.get(key), str):
                raise _invalid(f'"{key}" wasn\'t supplied.')
        sha = ctx.body["head_sha"]
        known = {s for p in self._pulls.values() if p.repo.full_name == name for s in p.heads}
        if sha not in known:
            raise _unprocessable(f"No commit found for SHA: {sha}")
        rid = next(self._ids)
        url = f"{self.url}/repos/{name}/check-runs/{rid}"
        run: dict[str, Any] = {
            "id": rid,
            "node_id": _node_id("CR", rid),
            "head_sha": sha,
            "external_id": "",
            "url": url,
            "html_url": f"https://github.com/{name}/runs/{rid}",
            "details_url": None,
            "status": "queued",
            "conclusion": None,
            "started_at": ctx.body.get("started_at") or iso(time.time()),
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{url}/annotations",
            },
            "name": ctx.body["name"],
            "check_suite": {"id": next(self._ids)},
            # the App whose installation token created it (GitHub: the token's App)
            "app": (
                {"slug": ctx.token.login.removesuffix("[bot]")}
                if ctx.token is not None and ctx.token.login.endswith("[bot]")
                else None
            ),
            "pull_requests": [],
            "_repo": name,
        }
        self._apply_check(ctx, run)
        self._check_runs.append(run)
        return Response(201, _public(run))

    def _list_check_runs(self, ctx: _Ctx) -> Response:
        """``GET /commits/{ref}/check-runs``: ``check_name`` and ``status`` filters; newest
        first."""
        name, sha = ctx.repo_name(), ctx.params["sha"]
        runs = [
            r
            for r in reversed(self._check_runs)
            if r["_repo"] == name
            and r["head_sha"] == sha
            and ctx.query.get("check_name") in (None, r["name"])
            and ctx.query.get("status") in (None, r["status"])
        ]
        per_page = min(max(_int(ctx.query.get("per_page"), 30), 1), 100)
        return Response(
            200, {"total_count": len(runs), "check_runs": [_public(r) for r in runs[:per_page]]}
        )

    def _find_check_run(self, ctx: _Ctx) -> dict[str, Any]:
        for run in self._check_runs:
            if run["id"] == int(ctx.params["id"]) and run["_repo"] == ctx.repo_name():
                return run
        raise _not_found()

    def _get_check_run(self, ctx: _Ctx) -> Response:
        return Response(200, _public(self._find_check_run(ctx)))

    def _update_check_run(self, ctx: _Ctx) -> Response:
        run = self._find_check_run(ctx)
        updated = json.loads(json.dumps(_public(run)))
        updated["_repo"] = run["_repo"]
        self._apply_check(ctx, updated)  # all or nothing
        run.clear()
        run.update(updated)
        return Response(200, _public(run))

    # --- handlers: GitHub App ------------------------------------------------------------------

    def _installation_of_repo(self, full_name: str) -> Installation | None:
        for inst in self._installations.values():
            if inst.repositories is None or full_name in inst.repositories:
                return inst
        return None

    def _get_app(self, ctx: _Ctx) -> Response:
        assert ctx.app is not None
        app = ctx.app
        return Response(
            200,
            {
                "id": app.app_id,
                "slug": app.slug,
                "client_id": app.client_id,
                "node_id": _node_id("A", app.app_id),
                "name": app.slug,
                "owner": self._user_json("depthgate", 4242, "Organization"),
                "html_url": f"https://github.com/apps/{app.slug}",
                "permissions": {},
                "events": [],
                "created_at": iso(self._epoch),
                "updated_at": iso(self._epoch),
            },
        )

    def _get_repo_installation(self, ctx: _Ctx) -> Response:
        assert ctx.app is not None
        name = ctx.repo_name()
        inst = self._installation_of_repo(name) if name in self._repos else None
        if inst is None or inst.app_id != ctx.app.app_id:
            raise _not_found()
        return Response(200, self._installation_json(inst))

    def _find_installation(self, ctx: _Ctx) -> Installation:
        assert ctx.app is not None
        inst = self._installations.get(int(ctx.params["id"]))
        if inst is None or inst.app_id != ctx.app.app_id:
            raise _not_found()
        return inst

    def _get_installation(self, ctx: _Ctx) -> Response:
        return Response(200, self._installation_json(self._find_installation(ctx)))

    def _create_access_token(self, ctx: _Ctx) -> Response:
        assert ctx.app is not None
        inst = self._find_installation(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        visible = [
            r
            for r in self._repos.values()
            if inst.repositories is None or r.full_name in inst.repositories
        ]
        repos = visible
        names = body.get("repositories")
        ids = body.get("repository_ids")
        if names or ids:
            wanted_names = set(names or [])
            wanted_ids = set(ids or [])
            repos = [
                r
                for r in visible
                if r.full_name.split("/", 1)[1] in wanted_names or r.id in wanted_ids
            ]
            found = {r.full_name.split("/", 1)[1] for r in repos} | {r.id for r in repos}
            if not wanted_names | wanted_ids <= found:
                raise _unprocessable(
                    "There is at least one repository that does not exist or is not accessible "
                    "to the parent installation.",
                    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
                )
        permissions = dict(body.get("permissions") or inst.permissions)
        rank = {"read": 1, "write": 2, "admin": 3}
        for key, level in permissions.items():
            if rank.get(level, 9) > rank.get(inst.permissions.get(key, ""), 0):
                raise _unprocessable(
                    "The permissions requested are not granted to this installation.",
                    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
                )
        value = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        expires = time.time() + 3600
        selected = names or ids or inst.repositories is not None
        self.add_token(
            value,
            write=any(level == "write" for level in permissions.values()),
            login=f"{ctx.app.slug}[bot]",
            user_id=ctx.app.bot_id,
            installation=True,
            repositories=[r.full_name for r in repos] if selected else None,
            permissions=permissions,
            expires_at=expires,
        )
        out: dict[str, Any] = {
            "token": value,
            "expires_at": iso(expires),
            "permissions": permissions,
            "repository_selection": "selected" if selected else "all",
        }
        if selected:
            out["repositories"] = [self._repo_json(r) for r in repos]
        return Response(201, out)

    def _list_deliveries(self, ctx: _Ctx) -> Response:
        """Cursor pagination, newest first (``per_page``, ``cursor``)."""
        per_page = min(max(_int(ctx.query.get("per_page"), 30), 1), 100)
        items = sorted(self._deliveries, key=lambda d: (d["delivered_at"], d["id"]), reverse=True)
        cursor = ctx.query.get("cursor")
        start = 0
        if cursor:
            start = next((i for i, d in enumerate(items) if str(d["id"]) == cursor), len(items))
        chunk = items[start : start + per_page]
        headers = {}
        if start + per_page < len(items):
            query = {**ctx.query, "cursor": str(items[start + per_page]["id"])}
            headers["link"] = f'<{self.url}{ctx.path}?{urlencode(query)}>; rel="next"'
        return Response(200, [dict(d) for d in chunk], headers)

    def _find_delivery(self, ctx: _Ctx) -> dict[str, Any]:
        for d in self._deliveries:
            if d["id"] == int(ctx.params["id"]):
                return d
        raise _not_found()

    def _get_delivery(self, ctx: _Ctx) -> Response:
        d = dict(self._find_delivery(ctx))
        d["url"] = f"{self.url}/app/hook/deliveries/{d['id']}"
        d["request"] = {"headers": {"X-GitHub-Delivery": d["guid"]}, "payload": {}}
        d["response"] = {"headers": {}, "payload": ""}
        return Response(200, d)

    def _redeliver(self, ctx: _Ctx) -> Response:
        old = self._find_delivery(ctx)
        self.add_delivery(
            guid=old["guid"],
            event=old["event"],
            action=old["action"],
            redelivery=True,
            installation_id=old["installation_id"],
            repository_id=old["repository_id"],
        )
        return Response(202, {})

    # --- handlers: user ------------------------------------------------------------------------

    def _get_user(self, ctx: _Ctx) -> Response:
        return Response(200, self._actor(ctx))

    def _get_rate_limit(self, ctx: _Ctx) -> Response:
        assert ctx.token is not None
        core = {
            "limit": RATE_LIMIT,
            "used": ctx.token.used,
            "remaining": RATE_LIMIT - ctx.token.used,
            "reset": int(self._epoch) + 3600,
        }
        return Response(200, {"resources": {"core": core}, "rate": core})


# --- small helpers -----------------------------------------------------------------------------


def _public(item: Any) -> Any:
    """A stored item without the fake's own bookkeeping keys (``_key``, ``_repo``)."""
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k not in ("_key", "_repo")}
    return item


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text.lower())


def _node_id(prefix: str, number: int) -> str:
    return f"{prefix}_kwDO" + base64.b64encode(str(number).encode()).decode().rstrip("=")


def _request_id() -> str:
    parts = (secrets.token_hex(2), secrets.token_hex(3), secrets.token_hex(3), secrets.token_hex(4))
    return ":".join(p.upper() for p in parts)


def _guid() -> str:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@contextmanager
def serve_github(
    *,
    default_tokens: bool = True,
    content_limits: tuple[int, int] | None = (80, 500),
    api_version: str = API_VERSION,
) -> Iterator[FakeGitHub]:
    """A running fake GitHub, stopped (server closed, kept-alive connections shut) on exit."""
    fake = FakeGitHub(
        default_tokens=default_tokens, content_limits=content_limits, api_version=api_version
    ).start()
    try:
        yield fake
    finally:
        fake.stop()
