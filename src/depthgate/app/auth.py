"""GitHub App authentication through PyGithub (design §7, threats T9 and T16).

The App signs a JWT (``Auth.AppAuth``: RS256, issued 60 s in the past, 10 minutes at most);
``GithubIntegration`` exchanges it for an installation token scoped to the *one* repository a
job is about, with the minimal permissions the review needs. Tokens are cached by installation
id (with the repository, since each token is scoped to one) -- never by repository name alone:
two installations can hold repositories of the same name -- until shortly before they expire,
and a token GitHub rejects with 401 is re-minted once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubIntegration

from depthgate.app.errors import AppAuthError, AppNotInstalled
from depthgate.github.api import DEFAULT_API_URL

# What the review does with a token: read the PR and its files, read the config from the default
# branch, post one review + one summary comment, write one check run. Nothing else.
REVIEW_PERMISSIONS: dict[str, str] = {
    "contents": "read",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
}
REFRESH_MARGIN_S = 300.0  # a cached token is replaced when it has less than this left


@dataclass(frozen=True)
class RepoRef:
    """The repository a token is for: the id when the payload has it (renames keep it)."""

    full_name: str
    id: int | None = None

    @property
    def cache_part(self) -> str:
        return f"id:{self.id}" if self.id is not None else f"name:{self.full_name.lower()}"


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class InstallationTokenAuth(Auth.Auth):
    """PyGithub auth that reads the current token from the cache on every request."""

    def __init__(self, supplier: Callable[[], str]) -> None:
        self._supplier = supplier

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self._supplier()


class AppAuthenticator:
    def __init__(
        self,
        app_id: str,
        private_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        permissions: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: float = REFRESH_MARGIN_S,
        write_interval_s: float = 1.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.permissions = dict(permissions or REVIEW_PERMISSIONS)
        self._clock = clock
        self._margin = refresh_margin_s
        self._write_interval = write_interval_s
        self._auth = Auth.AppAuth(app_id, private_key)
        self._integration: GithubIntegration | None = None
        self._tokens: dict[tuple[int, str], _Token] = {}
        self._lock = threading.Lock()
        self.minted = 0  # tokens minted so far (tests, metrics)
        self._bot_login: str | None = None

    @property
    def integration(self) -> GithubIntegration:
        if self._integration is None:
            self._integration = GithubIntegration(
                auth=self._auth,
                base_url=self.api_url,
                retry=None,
                # minting a token is not content creation: no write spacing
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
        return self._integration

    def app_request(
        self, verb: str, path: str, *, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Any]:
        """One REST call authenticated as the App (JWT): ``(headers, json)``."""
        try:
            return self.integration.requester.requestJsonAndCheck(
                verb, path, parameters=params, headers={"Accept": "application/vnd.github+json"}
            )
        except GithubException as exc:
            raise _app_error(exc, f"{verb} {path}") from None
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None

    def bot_login(self) -> str:
        """The login the App's comments carry, ``<slug>[bot]`` (``GET /app``, asked once): the
        review trusts only its own comments' markers."""
        if self._bot_login is None:
            _, data = self.app_request("GET", "/app")
            self._bot_login = f"{data['slug']}[bot]"
        return self._bot_login

    def token(self, installation_id: int, repo: RepoRef) -> str:
        key = (installation_id, repo.cache_part)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at - self._margin > self._clock():
                return cached.value
            minted = self._mint(installation_id, repo)
            self._tokens[key] = minted
            return minted.value

    def invalidate(self, installation_id: int, repo: RepoRef) -> None:
        with self._lock:
            self._tokens.pop((installation_id, repo.cache_part), None)

    def client(self, installation_id: int, repo: RepoRef) -> Github:
        """A PyGithub client acting as the installation, on this one repository."""
        return Github(
            auth=InstallationTokenAuth(lambda: self.token(installation_id, repo)),
            base_url=self.api_url,
            per_page=100,
            timeout=30,
            retry=None,  # retries are the caller's (depthgate.github.client): capped, switchable
            seconds_between_requests=None,
            seconds_between_writes=self._write_interval or None,  # GitHub: serial writes
            lazy=True,
        )

    def _unreachable(self, exc: Exception) -> AppAuthError:
        return AppAuthError(
            f"GitHub could not be reached at {self.api_url} ({type(exc).__name__}); check "
            "GITHUB_API_URL and the network"
        )

    def _mint(self, installation_id: int, repo: RepoRef) -> _Token:
        body: dict[str, Any] = {"permissions": self.permissions}
        if repo.id is not None:
            body["repository_ids"] = [repo.id]
        else:
            body["repositories"] = [repo.full_name.split("/", 1)[-1]]
        path = f"/app/installations/{installation_id}/access_tokens"
        try:
            _, data = self.integration.requester.requestJsonAndCheck("POST", path, input=body)
        except GithubException as exc:
            if exc.status == 404:
                raise AppNotInstalled(
                    f"the App is not installed on {repo.full_name} (installation "
                    f"{installation_id}): GitHub answered 404 to the installation-token request. "
                    "Install the App on that repository (or give the installation access to it)."
                ) from None
            if exc.status == 422:
                said = exc.data.get("message") if isinstance(exc.data, dict) else None
                raise AppNotInstalled(
                    f"GitHub refused an installation token for {repo.full_name} (installation "
                    f"{installation_id}, 422: {said or 'unprocessable'}): the repository is not "
                    "in the installation, or the installation lacks a permission the review "
                    f"needs ({', '.join(f'{k}: {v}' for k, v in self.permissions.items())})."
                ) from None
            raise _app_error(exc, f"an installation token for {repo.full_name}") from None
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None
        self.minted += 1
        return _Token(str(data["token"]), _parse_time(str(data.get("expires_at") or "")))


def _parse_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time() + 3600 - REFRESH_MARGIN_S  # GitHub's documented lifetime


def _app_error(exc: GithubException, what: str) -> AppAuthError:
    status = exc.status
    if status == 401:
        hint = (
            "GitHub rejected the App's JWT (401): check DEPTHGATE_APP_ID and the private key "
            "(DEPTHGATE_PRIVATE_KEY / DEPTHGATE_PRIVATE_KEY_PATH), and that this machine's clock "
            "is right"
        )
    elif status == 404:
        hint = (
            "GitHub answered 404: the App is not installed there any more, or on this "
            "repository (check the installation's repository access), or GITHUB_API_URL is wrong"
        )
    elif status == 422:
        hint = "GitHub refused the token request (422): the repository is not in the installation"
    elif status == 403:
        hint = "GitHub refused (403): the App lacks a permission the token asks for"
    else:
        hint = f"GitHub answered {status}; retry later"
    return AppAuthError(f"could not get {what}: {hint}")
