"""An in-process Gateway for pipeline tests: answers come from a function of the request."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from depthgate.core.models import Message
from depthgate.core.ports import ChatReply

Answerer = Callable[[str, Sequence[Message]], str]


class FakeGateway:
    def __init__(self, answer: Answerer, model: str = "fake-model") -> None:
        self.answer = answer
        self.model = model
        self.calls: list[tuple[str, list[Message]]] = []

    async def chat(
        self,
        alias: str,
        messages: Sequence[Message],
        *,
        response_schema: dict[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        self.calls.append((alias, list(messages)))
        return ChatReply(
            alias=alias,
            served_by=alias,
            content=self.answer(alias, messages),
            finish_reason="stop",
            response_model=self.model,
            input_tokens=10,
            output_tokens=5,
            latency_ms=1.0,
            request_id="req-1",
            retries=0,
            gateway_fallback=False,
        )
