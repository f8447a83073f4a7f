"""The OpenAI-compatible gateway client: one chat completion per task, per alias.

Configured only from ``gateway-routes.yaml`` and the environment variables it names (an entry
point resolves them into :class:`GatewaySettings`). Per alias: a concurrency limit, a timeout and
the request parameters the route declares (``max_tokens`` or ``max_completion_tokens``,
temperature or none, ``response_format`` or not) -- never guesses from model names.

Failures are told apart, not guessed at (design §4): every failure is a :class:`GatewayError`
with an :class:`~depthgate.core.models.ErrorClass`, the HTTP status, the request id, the retries and
the resolved model. The one retry layer is stamina's (capped, jittered exponential backoff;
``stamina.set_testing`` turns the waits off in tests); ``Retry-After`` / ``retry-after-ms`` set
the wait when present, and a wait longer than ``retry.max_retry_after_s`` or than what is left of
``retry.budget_s`` ends the call instead. ``auth`` and ``unknown_alias`` are never retried and
never fall back. Only the route's declared fallbacks are tried, in order, and the reply says
which served. A 200 is a success only with non-empty content and a ``finish_reason`` that is not
``length`` or ``content_filter``; otherwise it is ``bad_response`` (retried once).

Bounded I/O: each attempt has one deadline, the route's ``timeout_s``, over connecting, sending
and reading the whole answer (a server that trickles a byte at a time is cut there, not after
its last byte); the answer is read as a stream and abandoned past
``gateway.max_response_bytes`` (4 MiB by default); its JSON, and the model's, is depth-capped
(:mod:`depthgate.core.jsonbound`). A ``Retry-After`` that is no usable number of seconds
(``inf``, ``nan``, ``1e400``, negative) counts as too long: the call hands off, and the wait it
records is a finite ceiling, so the handoff stays valid JSON.

Exceptions::

    DepthgateError
    └── GatewayError     exit 3; alias, error_class, http_status, request_id, retries, ...
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import stamina

from depthgate.core import jsonbound
from depthgate.core.errors import ConfigError
from depthgate.core.models import NO_FALLBACK, RETRYABLE, ErrorClass, Message
from depthgate.core.ports import ChatReply, GatewayError
from depthgate.core.routes import (
    DEFAULT_MAX_RESPONSE_BYTES,
    GatewayConfig,
    Profile,
    RetryConfig,
    Route,
)
from depthgate.core.secretscan import find_secret_shape
from depthgate.gateway import endpoint, profiles
from depthgate.retrylog import route_retries_to_logging


@dataclass(frozen=True)
class GatewaySettings:
    base_url: str
    api_key: str | None
    chat_path: str
    auth: str
    profile: Profile
    headers: Mapping[str, str] = field(default_factory=dict)
    retry: RetryConfig = field(default_factory=RetryConfig)
    show_host: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def from_config(cls, cfg: GatewayConfig, env: Mapping[str, str]) -> GatewaySettings:
        """Resolve the config against the environment (entry points only)."""
        base_url = cfg.base_url
        if cfg.base_url_env and env.get(cfg.base_url_env):
            base_url = env[cfg.base_url_env]
        if not base_url:
            raise ConfigError(
                f"gateway URL not set: export {cfg.base_url_env}=https://your-gateway "
                f"(or set gateway.base_url in gateway-routes.yaml)"
            )
        key = env.get(cfg.api_key_env) or None
        if key is None and cfg.auth != "none":
            raise ConfigError(
                f"gateway key not set: export {cfg.api_key_env} (the variable named by "
                f"gateway.api_key_env), or set gateway.auth: none for a gateway without keys"
            )
        headers = dict(cfg.headers)
        for name, var in cfg.headers_env.items():
            if env.get(var):
                headers[name] = env[var]
        return cls(
            base_url=endpoint.base_url(
                base_url,
                cfg.chat_path,
                source=cfg.base_url_env
                if cfg.base_url_env and env.get(cfg.base_url_env)
                else "gateway.base_url",
            ),
            api_key=key,
            chat_path=cfg.chat_path,
            auth=cfg.auth,
            profile=cfg.profile,
            headers=headers,
            retry=cfg.retry,
            show_host=cfg.show_host,
            max_response_bytes=cfg.max_response_bytes,
        )

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in anything depthgate prints or posts."""
        values = [self.api_key or ""]
        values += [
            v for k, v in self.headers.items() if k.lower() not in ("x-title", "http-referer")
        ]
        return tuple(v for v in values if len(v) >= 8)


async def _read_capped(resp: httpx.Response, cap: int, alias: str) -> bytes | None:
    """The answer's body, decoded, or None once it passes ``cap`` bytes. Compressed answers are
    inflated here, never more than ``cap`` bytes at a time past what was kept: a gzip bomb of a
    few KB per chunk cannot grow to gigabytes (or to a chunk's 1,000-fold) before the cap."""
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    inflate = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or zlib header, detected
    elif encoding not in ("", "identity"):
        raise GatewayError(
            f"{alias}: bad_response: the answer is encoded as {encoding[:40]!r}, which depthgate "
            "did not ask for (it accepts gzip and deflate)",
            alias=alias,
            error_class=ErrorClass.BAD_RESPONSE,
            http_status=resp.status_code,
        )
    chunks: list[bytes] = []
    size = 0
    async for raw in resp.aiter_raw():
        pending = raw
        while pending:
            if inflate is None:
                data, pending = pending, b""
            else:
                try:
                    data = inflate.decompress(pending, cap - size + 1)  # max_length >= 1
                except zlib.error:
                    raise GatewayError(
                        f"{alias}: bad_response: the answer's {encoding} encoding is corrupt",
                        alias=alias,
                        error_class=ErrorClass.BAD_RESPONSE,
                        http_status=resp.status_code,
                    ) from None
                pending = inflate.unconsumed_tail
            size += len(data)
            if size > cap:
                return None
            chunks.append(data)
    return b"".join(chunks)


class HttpGateway:
    """:class:`Gateway` over httpx. One instance per run; ``aclose()`` when done."""

    def __init__(
        self,
        settings: GatewaySettings,
        routes: Mapping[str, Route],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        route_retries_to_logging()
        self.settings = settings
        self.routes = routes
        self._clock = clock
        self._wall = wall_clock
        # the encodings _read_capped decodes under the cap itself (httpx would also offer br and
        # zstd where their packages are installed, and decode each chunk whole)
        headers = {
            "User-Agent": "depthgate",
            "Accept-Encoding": "gzip, deflate",
            **settings.headers,
        }
        if settings.api_key and settings.auth == "bearer":
            headers["Authorization"] = f"Bearer {settings.api_key}"
        elif settings.api_key and settings.auth.startswith("header:"):
            headers[settings.auth.split(":", 1)[1]] = settings.api_key
        self._client = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            transport=transport,
            timeout=None,  # noqa: S113 - each request carries its route's timeout_s
        )
        self._slots = {alias: asyncio.Semaphore(r.concurrency) for alias, r in routes.items()}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def chat(
        self,
        alias: str,
        messages: Sequence[Message],
        *,
        response_schema: dict[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        route = self._route(alias)
        calls = 0
        try:
            return await self._with_retries(alias, messages, response_schema, extra_body)
        except GatewayError as primary:
            if (
                primary.error_class in NO_FALLBACK
                or primary.error_class is ErrorClass.MODEL_MISMATCH
            ):
                raise
            calls += primary.retries + 1
            for fallback in route.fallback:
                try:
                    reply = await self._with_retries(
                        fallback, messages, response_schema, extra_body
                    )
                except GatewayError as exc:
                    calls += exc.retries + 1
                    continue
                return replace(
                    reply,
                    alias=alias,
                    served_by=fallback,
                    calls=reply.calls + calls,
                    warnings=(
                        *reply.warnings,
                        f"{alias} failed ({primary.error_class.value}); declared fallback "
                        f"{fallback} served",
                    ),
                )
            raise

    def _route(self, alias: str) -> Route:
        try:
            return self.routes[alias]
        except KeyError:
            raise GatewayError(
                f"{alias}: not a route in gateway-routes.yaml",
                alias=alias,
                error_class=ErrorClass.UNKNOWN_ALIAS,
            ) from None

    async def _with_retries(
        self,
        alias: str,
        messages: Sequence[Message],
        response_schema: dict[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> ChatReply:
        policy = self.settings.retry
        deadline = self._clock() + policy.budget_s
        state = {"attempts": 0, "bad_responses": 0}

        def backoff(exc: BaseException) -> bool | float:
            if not isinstance(exc, GatewayError):
                return False
            if exc.error_class is ErrorClass.BAD_RESPONSE:
                state["bad_responses"] += 1
                return state["bad_responses"] <= 1  # one more try, then failed(bad_response)
            if exc.error_class not in RETRYABLE:
                return False
            wait = exc.retry_after_s
            if wait is None:
                return True  # stamina's capped, jittered exponential backoff
            if (
                wait >= profiles.RETRY_AFTER_CEILING_S  # inf, nan, negative: unusable
                or wait > policy.max_retry_after_s
                or self._clock() + wait > deadline
            ):
                return False  # waiting that long would outlive the budget: hand off instead
            return wait

        try:
            async for attempt in stamina.retry_context(
                on=backoff,
                attempts=policy.attempts,
                timeout=policy.budget_s,
                wait_initial=policy.wait_initial_s,
                wait_max=policy.wait_max_s,
            ):
                with attempt:
                    state["attempts"] += 1
                    reply = await self._once(alias, messages, response_schema, extra_body)
                    return replace(reply, retries=state["attempts"] - 1, calls=state["attempts"])
        except GatewayError as exc:
            raise exc.with_retries(state["attempts"] - 1) from None
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    def _body(
        self,
        route: Route,
        messages: Sequence[Message],
        response_schema: dict[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": route.send_model,
            "messages": list(messages),
            route.token_param: route.max_output_tokens,
        }
        if route.temperature is not None:
            body["temperature"] = route.temperature
        if response_schema is not None and route.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "review", "strict": True, "schema": response_schema},
            }
            if self.settings.profile is Profile.OPENROUTER:
                # some providers drop response_format unless required (docs/platform.md)
                body["provider"] = {"require_parameters": True}
        elif response_schema is not None and route.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        body.update(extra_body or {})
        return body

    async def _once(
        self,
        alias: str,
        messages: Sequence[Message],
        response_schema: dict[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> ChatReply:
        route = self._route(alias)
        body = self._body(route, messages, response_schema, extra_body)
        async with self._slots[alias]:
            started = self._clock()
            try:
                # One deadline for the whole exchange: httpx's timeouts are per socket
                # operation, so a server sending a byte every 0.5 s never trips them.
                async with asyncio.timeout(route.timeout_s):
                    answer = await self._exchange(alias, body)
            except (TimeoutError, httpx.TimeoutException):
                raise GatewayError(
                    f"{alias}: no complete answer within {route.timeout_s:g}s (the route's "
                    "timeout_s bounds connecting, sending and reading the whole answer)",
                    alias=alias,
                    error_class=ErrorClass.TIMEOUT,
                ) from None
            except httpx.TransportError as exc:
                raise GatewayError(
                    f"{alias}: could not reach the gateway ({type(exc).__name__})",
                    alias=alias,
                    error_class=ErrorClass.CONNECTION,
                ) from None
            latency_ms = (self._clock() - started) * 1000
        return self._reply(alias, route, answer, latency_ms)

    async def _exchange(self, alias: str, body: dict[str, Any]) -> _Answer:
        """Send the request and read the answer as a stream, abandoning it (the connection is
        closed) past ``max_response_bytes``: an answer is never held whole before it is known
        to be small."""
        cap = self.settings.max_response_bytes
        request = self._client.build_request("POST", self.settings.chat_path, json=body)
        resp = await self._client.send(request, stream=True)
        try:
            declared = resp.headers.get("content-length", "")
            content: bytes | None = None
            if not (declared.isdigit() and int(declared) > cap):
                content = await _read_capped(resp, cap, alias)
        finally:
            await resp.aclose()
        if content is None:
            raise GatewayError(
                f"{alias}: bad_response: the answer is larger than {cap} bytes "
                "(gateway.max_response_bytes); reading it was abandoned",
                alias=alias,
                error_class=ErrorClass.BAD_RESPONSE,
                http_status=resp.status_code,
                request_id=profiles.request_id(dict(resp.headers), None),
            )
        return _Answer(resp.status_code, resp.headers, content, resp.reason_phrase)

    def _reply(self, alias: str, route: Route, resp: _Answer, latency_ms: float) -> ChatReply:
        profile = self.settings.profile
        headers = dict(resp.headers)
        too_deep = False
        try:
            payload: Any = jsonbound.loads(resp.content)
        except jsonbound.JsonTooDeep:
            payload, too_deep = None, True
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        rid = profiles.request_id(headers, payload)
        model = profiles.resolved_model(profile, headers, payload)
        _, error_code, error_message = profiles.error_payload(payload)

        def fail(error_class: ErrorClass, what: str, wait: float | None = None) -> GatewayError:
            return GatewayError(
                f"{alias}: {error_class.value}: {what}",
                alias=alias,
                error_class=error_class,
                http_status=resp.status_code,
                request_id=rid,
                retry_after_s=wait,
                response_model=model,
                error_body_parsed=bool(error_code or error_message),
            )

        if resp.status_code >= 300:
            error_class = profiles.classify_error(profile, resp.status_code, payload, resp.text)
            detail = _safe(error_message or resp.text or resp.reason_phrase)
            wait = profiles.retry_after(headers, self._wall())
            raise fail(error_class, f"HTTP {resp.status_code}: {detail}", wait)
        if too_deep:
            raise fail(
                ErrorClass.BAD_RESPONSE,
                f"the answer's JSON is nested deeper than {jsonbound.MAX_JSON_DEPTH} levels",
            )
        if not isinstance(payload, dict):
            raise fail(ErrorClass.BAD_RESPONSE, "the answer is not JSON (a proxy page?)")
        if payload.get("error"):
            raise fail(
                ErrorClass.BAD_RESPONSE, f"error object in a 200 answer: {_safe(error_message)}"
            )
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise fail(ErrorClass.BAD_RESPONSE, "no choices in the answer")
        choice = choices[0]
        message_obj = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        content = message_obj.get("content") if isinstance(message_obj, dict) else None
        finish = choice.get("finish_reason")
        if finish in ("length", "content_filter"):
            raise fail(ErrorClass.BAD_RESPONSE, f"finish_reason {finish}: the answer is cut off")
        if not isinstance(content, str) or not content.strip():
            raise fail(ErrorClass.BAD_RESPONSE, "empty content")

        warnings: list[str] = []
        if route.locked_model and model and not profiles.model_matches(route.locked_model, model):
            text = f"resolved model {model!r} does not match locked_model {route.locked_model!r}"
            if route.on_model_mismatch == "fail":
                raise fail(ErrorClass.MODEL_MISMATCH, text)
            warnings.append(f"{alias}: {text}")
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        return ChatReply(
            alias=alias,
            served_by=alias,
            content=content,
            finish_reason=finish if isinstance(finish, str) else None,
            response_model=model,
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            latency_ms=latency_ms,
            request_id=rid,
            retries=0,
            gateway_fallback=profiles.gateway_fallback(profile, headers),
            warnings=tuple(warnings),
        )


@dataclass(frozen=True)
class _Answer:
    """What was read of one HTTP answer, within the byte cap."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    reason_phrase: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _safe(text: str) -> str:
    """A gateway's error text, shortened, on one line, with anything key-shaped removed."""
    one_line = " ".join(str(text).split())[:200]
    return (
        "[message withheld: it contains a credential-shaped value]"
        if find_secret_shape(one_line)
        else one_line
    )
