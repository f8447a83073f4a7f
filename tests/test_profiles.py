"""Gateway profiles: the answers real gateways give (docs/platform.md) -> error classes."""

from __future__ import annotations

import email.utils

import pytest

from depthgate.core.models import ErrorClass
from depthgate.core.routes import Profile
from depthgate.gateway.profiles import classify_error, model_matches, resolved_model, retry_after

LITELLM_BAD_ALIAS = {
    "error": {
        "message": "/chat/completions: Invalid model name passed in model=review-nope. "
        "Call `/v1/models` to view available models for your key.",
        "type": "invalid_request_error",
        "param": None,
        "code": "400",
    }
}
LITELLM_NO_DB = {
    "error": {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": None,
        "code": "400",
    }
}


@pytest.mark.parametrize(
    ("profile", "status", "payload", "expected"),
    [
        (Profile.LITELLM, 400, LITELLM_BAD_ALIAS, ErrorClass.UNKNOWN_ALIAS),
        (Profile.LITELLM, 400, LITELLM_NO_DB, ErrorClass.AUTH),  # same status, told apart by type
        (
            Profile.LITELLM,
            401,
            {
                "error": {
                    "message": "Authentication Error, No api key passed in.",
                    "type": "auth_error",
                }
            },
            ErrorClass.AUTH,
        ),
        (Profile.LITELLM, 429, {"error": {"type": "throttling_error"}}, ErrorClass.RATE_LIMITED),
        (Profile.LITELLM, 500, {"error": {"type": "internal_server_error"}}, ErrorClass.SERVER),
        (
            Profile.LITELLM,
            408,
            {"error": {"type": "invalid_request_error", "code": "408"}},
            ErrorClass.TIMEOUT,
        ),
        (
            Profile.OPENROUTER,
            400,
            {"error": {"message": "foo/bar is not a valid model ID", "code": 400}},
            ErrorClass.UNKNOWN_ALIAS,
        ),
        (
            Profile.OPENROUTER,
            401,
            {"error": {"message": "User not found.", "code": 401}},
            ErrorClass.AUTH,
        ),
        (
            Profile.COMETAPI,
            503,
            {
                "error": {
                    "code": "model_not_found",
                    "message": "no available channel for group default and model x",
                    "type": "comet_api_error",
                }
            },
            ErrorClass.UNKNOWN_ALIAS,
        ),
        (Profile.COMETAPI, 503, {"error": {"message": "overloaded"}}, ErrorClass.SERVER),
        (
            Profile.CLOUDFLARE,
            404,
            {"success": False, "errors": [{"code": 7002, "message": "route not found"}]},
            ErrorClass.UNKNOWN_ALIAS,
        ),
        (
            Profile.CLOUDFLARE,
            401,
            {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]},
            ErrorClass.AUTH,
        ),
        (
            Profile.OPENAI,
            404,
            {"error": {"code": "model_not_found", "message": "The model does not exist"}},
            ErrorClass.UNKNOWN_ALIAS,
        ),
        (
            Profile.OPENAI,
            401,
            {"error": {"code": "invalid_api_key", "message": "Incorrect API key"}},
            ErrorClass.AUTH,
        ),
        (
            Profile.OPENAI,
            400,
            {
                "error": {
                    "code": "context_length_exceeded",
                    "message": "maximum context length is 8192 tokens",
                }
            },
            ErrorClass.CONTEXT_LENGTH,
        ),
        (
            Profile.GENERIC,
            400,
            {"error": {"message": "temperature is not supported"}},
            ErrorClass.BAD_REQUEST,
        ),
        (Profile.PORTKEY, 401, None, ErrorClass.AUTH),  # Portkey: sometimes no body at all
        (Profile.GENERIC, 502, None, ErrorClass.SERVER),
        (Profile.GENERIC, 409, None, ErrorClass.SERVER),
    ],
)
def test_error_classes(
    profile: Profile, status: int, payload: object, expected: ErrorClass
) -> None:
    assert classify_error(profile, status, payload, "") is expected


def test_resolved_model_is_read_where_the_profile_says() -> None:
    body = {"model": "review-fast"}
    litellm = {"x-litellm-model-name": "openai/gpt-4.1-mini"}
    assert resolved_model(Profile.LITELLM, litellm, body) == "openai/gpt-4.1-mini"
    assert resolved_model(Profile.LITELLM, {}, body) == "review-fast"
    assert resolved_model(Profile.CLOUDFLARE, {"cf-aig-model": "gpt-4o"}, {}) == "gpt-4o"
    assert (
        resolved_model(Profile.OPENROUTER, litellm, {"model": "anthropic/claude"})
        == "anthropic/claude"
    )


@pytest.mark.parametrize(
    ("locked", "resolved", "ok"),
    [
        ("gpt-4.1-mini", "gpt-4.1-mini", True),
        ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", True),
        ("gpt-4.1-mini", "openai/gpt-4.1-mini", True),
        ("gpt-5.4-mini", "gpt-5.4-mini-2026-03-17", True),
        ("claude-sonnet-4-6*", "claude-sonnet-4-6-20260101", True),
        ("gpt-4.1-mini", "gpt-4.1", False),
        ("gpt-4.1-mini", "gpt-4o-mini", False),
        ("claude-sonnet-4-6*", "claude-haiku-4", False),
    ],
)
def test_model_matching(locked: str, resolved: str, ok: bool) -> None:
    assert model_matches(locked, resolved) is ok


def test_retry_after_forms() -> None:
    now = 1_000_000.0
    assert retry_after({"Retry-After": "7"}, now) == 7.0
    assert retry_after({"retry-after-ms": "1500"}, now) == 1.5
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after({"Retry-After": date}, now) == pytest.approx(30, abs=1)
    assert retry_after({"llm_provider-retry-after": "3"}, now) == 3.0
    assert retry_after({}, now) is None
    assert retry_after({"Retry-After": "soon"}, now) is None
