"""The GitHub adapter: read a pull request and post depthgate's writes, through PyGithub.

One :class:`PullRequestClient` per pull request and run. It reads what the review needs (the
PR, its files, the issue comments that may hold the sticky summary, the review comments that
carry fingerprints) and makes at most two writes: the review and the summary (the App adds the
start and end of its check run). PyGithub does the HTTP, pagination and the spacing of writes
(``seconds_between_writes``, 1 s by default: at most 60 content-creating requests a minute,
under GitHub's 80). Its own urllib3 retry is turned off;
this module retries instead, so that every wait is GitHub's own number (``Retry-After``, or the
primary limit's reset time, else 60 s and doubling, per docs/platform.md), is capped, and is
switched off in tests by ``stamina.set_testing``:

* reads retry rate limits, 5xx and connection errors;
* writes retry only rate-limit answers, which GitHub sends before doing anything -- a write that
  failed any other way may have landed, and repeating it could post twice.

Every failure becomes a :class:`GitHubFailure` (exit 4) that says what was being done, what
GitHub answered and what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import stamina
from github import Auth, Github, GithubException, UnknownObjectException
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest
from github.PullRequestComment import PullRequestComment

from depthgate.core.errors import DepthgateError
from depthgate.core.ports import ExistingComment, GitHubErrorClass, GitHubFailure, PullRequestInfo
from depthgate.core.publish import ReviewPayload
from depthgate.core.source import Blob, BlobRequest, describe_size
from depthgate.github.api import DEFAULT_API_URL, api_url
from depthgate.retrylog import route_retries_to_logging

T = TypeVar("T")

SECONDARY_WAIT_S = 60.0  # no Retry-After and no reset time: wait at least a minute
CHECK_OUTPUT_MAX = 65_535  # characters in a check run's output summary and text


@dataclass(frozen=True)
class GitHubSettings:
    token: str
    api_url: str = DEFAULT_API_URL
    write_interval_s: float = 1.0  # PyGithub's spacing of writes; GitHub allows 80 a minute
    max_wait_s: float = 90.0  # the longest rate-limit wait before handing off
    attempts: int = 4
    timeout_s: int = 30
    per_page: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str], token: str | None = None) -> GitHubSettings:
        token = token or env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or ""
        if not token:
            raise DepthgateError(
                "no GitHub token: set GITHUB_TOKEN (in Actions the `github-token` input, "
                "github.token by default)"
            )
        interval = env.get("DEPTHGATE_GITHUB_WRITE_INTERVAL_S", "")
        try:
            write_interval = float(interval) if interval else 1.0
        except ValueError:
            raise DepthgateError(
                f"DEPTHGATE_GITHUB_WRITE_INTERVAL_S={interval!r} is not a number of seconds"
            ) from None
        if write_interval < 0:
            raise DepthgateError("DEPTHGATE_GITHUB_WRITE_INTERVAL_S must be 0 or more")
        return cls(token=token, api_url=api_url(env), write_interval_s=write_interval)

    def client(self) -> Github:
        return Github(
            auth=Auth.Token(self.token),
            base_url=self.api_url,
            per_page=self.per_page,
            timeout=self.timeout_s,
            retry=None,  # retries are ours: capped, GitHub's own waits, off in tests
            seconds_between_requests=None,  # reads are serial already
            seconds_between_writes=self.write_interval_s or None,
            lazy=True,
        )


def parse_pr_ref(text: str) -> tuple[str, int]:
    """``OWNER/REPO#N`` -> (``OWNER/REPO``, N); a clear error for anything else."""
    repo, sep, number = text.partition("#")
    parts = repo.split("/")
    if (
        not sep
        or len(parts) != 2
        or not all(parts)
        or not number.isdigit()
        or int(number) < 1
        or any(c.isspace() for c in repo)
    ):
        raise DepthgateError(f"--pr {text!r}: expected OWNER/REPO#NUMBER, e.g. octo/app#12")
    return repo, int(number)


class PullRequestClient:
    """The reads and writes of one review run on one pull request."""

    def __init__(
        self,
        repo: str,
        number: int,
        settings: GitHubSettings,
        *,
        github: Github | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        route_retries_to_logging()
        self.repo = repo
        self.number = number
        self.settings = settings
        self._gh = github or settings.client()
        self._clock = clock
        self._pr: PullRequest | None = None

    def close(self) -> None:
        self._gh.close()

    def __enter__(self) -> PullRequestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------

    def info(self) -> PullRequestInfo:
        """``GET /repos/{o}/{r}/pulls/{n}`` (read anew on every call: the head may move)."""

        def get() -> PullRequestInfo:
            pr = self._gh.get_repo(self.repo).get_pull(self.number)  # lazy: no request yet
            raw = pr.raw_data  # the one GET
            self._pr = pr
            return PullRequestInfo(
                number=self.number,
                head_sha=str(raw["head"]["sha"]),
                state=str(raw.get("state", "open")),
                title=str(raw.get("title") or ""),
                body=str(raw.get("body") or ""),
                base_sha=str((raw.get("base") or {}).get("sha") or ""),
            )

        return self._read("read the pull request", get)

    def files(self) -> list[dict[str, Any]]:
        """Every file of the PR, all pages (GitHub lists at most 3,000)."""
        return self._read(
            "read the pull request's files",
            lambda: [f.raw_data for f in self._pull().get_files()],
        )

    def issue_comments(self) -> list[ExistingComment]:
        return self._read(
            "read the pull request's comments",
            lambda: [_existing(c) for c in self._pull().get_issue_comments()],
        )

    def review_comments(self) -> list[ExistingComment]:
        return self._read(
            "read the pull request's review comments",
            lambda: [_existing(c) for c in self._pull().get_review_comments()],
        )

    def review_threads(self) -> list[dict[str, Any]]:
        """Every review comment of the PR as GitHub returns it (``in_reply_to_id``, ``path``,
        ``line``, ``side``, ``diff_hunk``, ``created_at``...): the threads, in one read."""
        # _rawData, not raw_data: the listing holds every field already, and raw_data would
        # complete each comment with a GET of its own (one read per comment)
        return self._read(
            "read the pull request's review comments",
            lambda: [dict(c._rawData) for c in self._pull().get_review_comments()],
        )

    def read_blobs(self, requests: Sequence[BlobRequest], *, max_bytes: int) -> dict[str, Blob]:
        """Many files in one GraphQL query per :data:`GRAPHQL_BLOBS` files (the source port).

        Each request is ``object(oid:)`` or ``object(expression: "REV:PATH")``; the values travel
        as GraphQL variables, never inside the query text. A file that is missing, binary, larger
        than ``max_bytes``, truncated by GitHub or not UTF-8 comes back with ``text=None`` and the
        reason; a failure of the whole query raises :class:`GitHubFailure` like any read.
        """
        out: dict[str, Blob] = {}
        for start in range(0, len(requests), GRAPHQL_BLOBS):
            chunk = list(requests[start : start + GRAPHQL_BLOBS])
            query, variables = _blob_query(self.repo, chunk)

            def post(query: str = query, variables: dict[str, str] = variables) -> Any:
                _, data = self._gh.requester.graphql_query(query, variables)
                return data

            data = self._read("read the changed files", post)
            repo = (data.get("data") or {}).get("repository") or {}
            for n, req in enumerate(chunk):
                out[req.key] = _blob(repo.get(f"f{n}"), max_bytes)
        return out

    def viewer_login(self) -> str | None:
        """The login the token writes as (``GET /user``), or None where GitHub does not say
        (an Actions or installation token answers 403)."""
        try:
            return str(self._gh.get_user().login)
        except GithubException:
            return None
        except requests.RequestException as exc:
            raise GitHubFailure(
                f"could not read the token's user: {type(exc).__name__}",
                step="read the token's user",
                error_class=GitHubErrorClass.CONNECTION,
            ) from None

    # -- writes --------------------------------------------------------------------------------

    def create_review(self, payload: ReviewPayload) -> int:
        """``POST /pulls/{n}/reviews`` with the payload of :mod:`depthgate.core.publish`.

        PyGithub's ``create_review`` takes a Commit object, which costs a read to build; the
        payload already names ``commit_id``, so it goes through PyGithub's requester as is.
        """
        pr = self._pull()

        def post() -> int:
            _, data = pr.requester.requestJsonAndCheck(
                "POST", f"{pr.url}/reviews", input=payload.to_json()
            )
            return int(data["id"])

        return self._write("post the review", post)

    def create_comment(self, body: str) -> int:
        pr = self._pull()

        def post() -> int:
            return int(pr.create_issue_comment(body).id)

        return self._write("post the summary comment", post)

    def edit_comment(self, comment_id: int, body: str) -> None:
        pr = self._pull()
        url = f"{_repo_url(pr)}/issues/comments/{comment_id}"

        def patch() -> None:
            pr.requester.requestJsonAndCheck("PATCH", url, input={"body": body})

        self._write("edit the summary comment", patch)

    def find_check_run(
        self, name: str, head_sha: str, *, app_slug: str | None, completed: bool = False
    ) -> int | None:
        """The newest check run ``name`` on ``head_sha`` that is not completed (with
        ``completed``: in any state), of this App (``app_slug``; any app when None): what an
        earlier attempt of a job left in progress, or the run a suite's Re-run is about.
        ``GET /commits/{sha}/check-runs``, one read."""
        pr = self._pull()

        def get() -> int | None:
            _, data = pr.requester.requestJsonAndCheck(
                "GET",
                f"{_repo_url(pr)}/commits/{head_sha}/check-runs",
                parameters={"check_name": name, "filter": "all", "per_page": 100},
            )
            runs = data.get("check_runs") if isinstance(data, dict) else None
            open_ids = [
                int(r["id"])
                for r in runs or []
                if isinstance(r, dict)
                and (completed or r.get("status") != "completed")
                and (app_slug is None or (r.get("app") or {}).get("slug") in (None, app_slug))
            ]
            return max(open_ids, default=None)

        return self._read("find the check run", get)

    def start_check_run(self, name: str, head_sha: str) -> int:
        """``POST /check-runs`` in progress (App mode: the Action's job is its own check)."""
        pr = self._pull()

        def post() -> int:
            body = {"name": name, "head_sha": head_sha, "status": "in_progress"}
            _, data = pr.requester.requestJsonAndCheck(
                "POST", f"{_repo_url(pr)}/check-runs", input=body
            )
            return int(data["id"])

        return self._write("start the check run", post)

    def collaborator_permission(self, login: str) -> str | None:
        """``admin``/``maintain``/``write``/``triage``/``read``, or None for no access (404)."""
        pr = self._pull()

        def get() -> str | None:
            try:
                _, data = pr.requester.requestJsonAndCheck(
                    "GET", f"{_repo_url(pr)}/collaborators/{quote(login, safe='')}/permission"
                )
            except UnknownObjectException:
                return None
            role = data.get("role_name") or data.get("permission")
            return str(role) if role else None

        return self._read("read the commenter's permission", get)

    def react(self, comment_id: int, content: str) -> None:
        """A reaction on an issue comment: how a command is acknowledged."""
        pr = self._pull()

        def post() -> None:
            pr.requester.requestJsonAndCheck(
                "POST",
                f"{_repo_url(pr)}/issues/comments/{comment_id}/reactions",
                input={"content": content},
            )

        self._write("acknowledge the command", post)

    def reply_in_thread(self, root_id: int, body: str) -> int:
        """``POST /pulls/{n}/comments/{id}/replies``: an answer in a review thread."""
        pr = self._pull()

        def post() -> int:
            _, data = pr.requester.requestJsonAndCheck(
                "POST", f"{pr.url}/comments/{root_id}/replies", input={"body": body}
            )
            return int(data["id"])

        return self._write("answer in the review thread", post)

    def resume_check_run(self, check_id: int) -> None:
        """An earlier check run back to ``in_progress`` (Re-run was pressed on it)."""
        pr = self._pull()

        def patch() -> None:
            pr.requester.requestJsonAndCheck(
                "PATCH",
                f"{_repo_url(pr)}/check-runs/{check_id}",
                input={"status": "in_progress"},
            )

        self._write("restart the check run", patch)

    def finish_check_run(
        self,
        check_id: int | None,
        name: str,
        head_sha: str,
        conclusion: str,
        output: Mapping[str, str],
    ) -> int:
        """Complete the check run (or, when it could not be started, create it completed)."""
        pr = self._pull()
        out = {k: v[:CHECK_OUTPUT_MAX] for k, v in output.items()}
        body: dict[str, Any] = {"status": "completed", "conclusion": conclusion, "output": out}

        def send() -> int:
            if check_id is None:
                _, data = pr.requester.requestJsonAndCheck(
                    "POST",
                    f"{_repo_url(pr)}/check-runs",
                    input={"name": name, "head_sha": head_sha, **body},
                )
                return int(data["id"])
            pr.requester.requestJsonAndCheck(
                "PATCH", f"{_repo_url(pr)}/check-runs/{check_id}", input=body
            )
            return check_id

        return self._write("complete the check run", send)

    # -- plumbing ------------------------------------------------------------------------------

    def _pull(self) -> PullRequest:
        if self._pr is None:
            self._pr = self._gh.get_repo(self.repo).get_pull(self.number)
        return self._pr

    def _read(self, step: str, call: Callable[[], T]) -> T:
        return self._retrying(step, call, write=False)

    def _write(self, step: str, call: Callable[[], T]) -> T:
        return self._retrying(step, call, write=True)

    def _retrying(self, step: str, call: Callable[[], T], *, write: bool) -> T:
        waits = {"n": 0}

        def backoff(exc: BaseException) -> bool | float:
            if not isinstance(exc, GitHubFailure):
                return False
            if exc.error_class is GitHubErrorClass.RATE_LIMITED:
                waits["n"] += 1
                wait = exc.retry_after_s
                if wait is None:
                    wait = SECONDARY_WAIT_S * 2 ** (waits["n"] - 1)
                return wait if wait <= self.settings.max_wait_s else False
            if write:
                return False  # it may have landed: never repeat a write that was not refused
            return exc.error_class in (GitHubErrorClass.SERVER, GitHubErrorClass.CONNECTION)

        for attempt in stamina.retry_context(
            on=backoff, attempts=self.settings.attempts, timeout=None
        ):
            with attempt:
                try:
                    return call()
                except GithubException as exc:
                    raise self._failure(step, exc) from None
                except requests.RequestException as exc:
                    raise GitHubFailure(
                        f"could not {step}: {type(exc).__name__} talking to "
                        f"{self.settings.api_url}",
                        step=step,
                        error_class=GitHubErrorClass.CONNECTION,
                    ) from None
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    def _failure(self, step: str, exc: GithubException) -> GitHubFailure:
        headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
        data = exc.data if isinstance(exc.data, dict) else {}
        message = str(data.get("message") or exc.message or "")
        errors = tuple(_error_texts(data.get("errors")))
        status = exc.status
        retry_after = self._rate_limit_wait(status, headers, message)
        if retry_after is not None:
            cls = GitHubErrorClass.RATE_LIMITED
            wait: float | None = retry_after if retry_after > 0 else None
        else:
            wait = None
            cls = _classify(status)
        detail = f"{message}: {'; '.join(errors)}" if errors else message
        return GitHubFailure(
            f"could not {step}: GitHub answered {status} ({detail or 'no message'})",
            step=step,
            error_class=cls,
            http_status=status,
            request_id=headers.get("x-github-request-id"),
            retry_after_s=wait,
            errors=errors,
        )

    def _rate_limit_wait(
        self, status: int, headers: Mapping[str, str], message: str
    ) -> float | None:
        """The wait a rate-limit answer asks for (0 = unknown), or None if it is not one."""
        if status not in (403, 429):
            return None
        retry_after = headers.get("retry-after", "")
        if retry_after.strip().isdigit():
            return float(retry_after)
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
            try:
                return max(1.0, float(headers["x-ratelimit-reset"]) - self._clock())
            except ValueError:
                return 0.0
        if status == 429 or "rate limit" in message.lower():
            return 0.0
        return None


def _repo_url(pr: PullRequest) -> str:
    """``…/repos/{o}/{r}`` of a PR's API URL, whatever the host (GHES included)."""
    return pr.url.rsplit("/pulls/", 1)[0]


def _classify(status: int) -> GitHubErrorClass:
    if status == 401:
        return GitHubErrorClass.AUTH
    if status == 403:
        return GitHubErrorClass.FORBIDDEN
    if status in (404, 410):
        return GitHubErrorClass.NOT_FOUND
    if status == 422:
        return GitHubErrorClass.UNPROCESSABLE
    if status >= 500:
        return GitHubErrorClass.SERVER
    return GitHubErrorClass.UNPROCESSABLE


def _error_texts(errors: object) -> Iterable[str]:
    if not isinstance(errors, list):
        return
    for e in errors:
        if isinstance(e, str):
            yield e
        elif isinstance(e, dict) and isinstance(e.get("message"), str):
            yield e["message"]


def _existing(c: IssueComment | PullRequestComment) -> ExistingComment:
    return ExistingComment(int(c.id), c.body or "", c.user.login if c.user else "")


GRAPHQL_BLOBS = 50  # files per GraphQL query: well inside GitHub's node and size limits


def _blob_query(repo: str, requests: Sequence[BlobRequest]) -> tuple[str, dict[str, str]]:
    owner, name = repo.split("/", 1)
    variables = {"owner": owner, "name": name}
    params, fields = ["$owner: String!", "$name: String!"], []
    for n, req in enumerate(requests):
        if req.oid is not None:
            params.append(f"$v{n}: GitObjectID!")
            fields.append(f"f{n}: object(oid: $v{n}) {{ ...B }}")
            variables[f"v{n}"] = req.oid
        else:
            params.append(f"$v{n}: String!")
            fields.append(f"f{n}: object(expression: $v{n}) {{ ...B }}")
            variables[f"v{n}"] = f"{req.rev}:{req.path}"
    query = (
        f"query({', '.join(params)}) {{ repository(owner: $owner, name: $name) {{ "
        f"{' '.join(fields)} }} }} "
        "fragment B on Blob { oid byteSize isBinary isTruncated text }"
    )
    return query, variables


def _blob(node: Any, max_bytes: int) -> Blob:
    if not isinstance(node, dict) or "byteSize" not in node:
        return Blob(None, problem="not found")
    size = int(node.get("byteSize") or 0)
    oid = str(node.get("oid") or "") or None
    if node.get("isBinary"):
        return Blob(None, oid, size, "binary file")
    if size > max_bytes:
        return Blob(None, oid, size, f"file over {describe_size(max_bytes)}")
    text = node.get("text")
    if node.get("isTruncated") or not isinstance(text, str):
        return Blob(None, oid, size, "GitHub did not send the whole file")
    return Blob(text, oid, size)
