"""The webhook app's own errors (all ``DepthgateError``: entry points turn them into exit codes).

DepthgateError
├── AppConfigError        a setting of the app is missing or wrong (2)
└── AppAuthError          GitHub refused the App's JWT or an installation token (4)
    └── AppNotInstalled   the token request answered 404/422: no retry changes that
"""

from __future__ import annotations

from depthgate.core.errors import EXIT_GITHUB, DepthgateError


class AppConfigError(DepthgateError):
    """A setting (environment variable or flag) of serve/worker/reconcile is missing or wrong."""


class AppAuthError(DepthgateError):
    """GitHub refused to authenticate the App or to mint an installation token."""

    exit_code = EXIT_GITHUB


class AppNotInstalled(AppAuthError):
    """The installation-token request answered 404 (the App is not installed there) or 422
    (the repository or a permission is outside the installation): final, so a job fails at
    once instead of asking again."""
