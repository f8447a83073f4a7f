"""``depthgate smoke``: one small request to every alias, one to an alias that cannot exist, and
optionally one with a deliberately wrong key; the record of design §5.

A result passes when the answer is a 200 with non-empty content whose resolved model (read where
the gateway profile says) matches the route's ``locked_model``. The invalid alias passes when the
gateway answers non-2xx with a parseable error that depthgate files as ``unknown_alias`` -- not
``auth``, which is how LiteLLM's 400s are told apart. The wrong key passes when it is filed as
``auth``. One attempt each, fallbacks disabled where the gateway allows it. Never asserts token
counts, latency or prices, and never records a credential, a prompt or a response.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from depthgate.core.markdown import Escape
from depthgate.core.models import ErrorClass
from depthgate.core.ports import GatewayError
from depthgate.core.routes import Profile, RetryConfig, Route
from depthgate.gateway.client import GatewaySettings, HttpGateway

INVALID_ALIAS = "invalid-alias"
PROMPT = [{"role": "user", "content": "Reply with the single word: ok"}]


async def run_smoke(
    settings: GatewaySettings,
    routes: Mapping[str, Route],
    *,
    check_auth: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:12]
    once = replace(settings, retry=RetryConfig(attempts=1))
    small = {
        alias: r.model_copy(update={"max_output_tokens": 16, "fallback": [], "concurrency": 1})
        for alias, r in routes.items()
    }
    template = next(iter(small.values()))
    small[INVALID_ALIAS] = template.model_copy(
        update={"send_model": f"depthgate-smoke-no-such-alias-{run_id}", "locked_model": None}
    )
    extra = {"disable_fallbacks": True} if settings.profile is Profile.LITELLM else None
    results: list[dict[str, Any]] = []
    async with HttpGateway(once, small, transport=transport) as gw:
        for alias in routes:
            results.append(await _alias(gw, alias, routes[alias], extra))
        results.append(await _invalid(gw, extra))
    if check_auth:
        wrong = replace(once, api_key="depthgate-smoke-wrong-key-" + run_id)
        async with HttpGateway(wrong, small, transport=transport) as gw:
            results.append(await _wrong_key(gw, next(iter(routes)), extra))
    return {
        "smoke_test_run_id": run_id,
        "tested_at": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gateway_base_url": urlsplit(settings.base_url).netloc
        if settings.show_host
        else "REDACTED",
        "aliases_tested": list(routes),
        "results": [_seed_shape(r) for r in results],
        "overall_pass": all(r["pass"] for r in results),
        "notes": _notes(results, settings.profile),
    }


# The record has exactly the seed's fields (design §5): what else was learned -- the error
# class of a failure, the locked model, a fallback the gateway took -- goes into "notes".
RECORD_FIELDS = (
    "smoke_test_run_id",
    "tested_at",
    "gateway_base_url",
    "aliases_tested",
    "results",
    "overall_pass",
    "notes",
)
ALIAS_FIELDS = ("alias", "http_status", "response_model_field", "choices_present", "pass")
ERROR_FIELDS = ("alias", "http_status", "error_parseable", "pass")


def _seed_shape(result: Mapping[str, Any]) -> dict[str, Any]:
    fields = ALIAS_FIELDS if "choices_present" in result else ERROR_FIELDS
    return {k: result.get(k) for k in fields}


def _notes(results: list[dict[str, Any]], profile: Profile) -> str:
    parts = []
    for r in results:
        said = []
        if r.get("error_class"):
            said.append(f"error class {r['error_class']}")
        if r.get("locked_model"):
            said.append(f"locked_model {r['locked_model']}")
        if r.get("gateway_fallback"):
            said.append("served by a gateway fallback")
        if said:
            verdict = "pass" if r["pass"] else "FAIL"
            parts.append(f"{r['alias']}: {verdict}, {', '.join(said)}")
    parts.append(f"gateway profile {profile.value}")
    return "; ".join(parts)


async def _alias(
    gw: HttpGateway, alias: str, route: Route, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    try:
        reply = await gw.chat(alias, PROMPT, extra_body=extra)
    except GatewayError as exc:
        return {
            "alias": alias,
            "http_status": exc.http_status,
            "response_model_field": exc.response_model,
            "choices_present": False,
            "error_class": exc.error_class.value,
            "pass": False,
        }
    return {
        "alias": alias,
        "http_status": 200,
        "response_model_field": reply.response_model,
        "locked_model": route.locked_model,
        "choices_present": True,
        "gateway_fallback": reply.gateway_fallback,
        "pass": not reply.gateway_fallback and not reply.warnings,
    }


async def _invalid(gw: HttpGateway, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        await gw.chat(INVALID_ALIAS, PROMPT, extra_body=extra)
    except GatewayError as exc:
        return {
            "alias": INVALID_ALIAS,
            "http_status": exc.http_status,
            "error_parseable": exc.error_body_parsed,
            "error_class": exc.error_class.value,
            "pass": exc.error_class is ErrorClass.UNKNOWN_ALIAS
            and exc.http_status is not None
            and exc.error_body_parsed,
        }
    return {"alias": INVALID_ALIAS, "http_status": 200, "error_parseable": False, "pass": False}


async def _wrong_key(
    gw: HttpGateway, alias: str, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    try:
        await gw.chat(alias, PROMPT, extra_body=extra)
    except GatewayError as exc:
        return {
            "alias": f"{alias} (wrong key)",
            "http_status": exc.http_status,
            "error_parseable": exc.error_body_parsed,
            "error_class": exc.error_class.value,
            "pass": exc.error_class is ErrorClass.AUTH,
        }
    return {
        "alias": f"{alias} (wrong key)",
        "http_status": 200,
        "error_parseable": False,
        "pass": False,
    }


def render_text(record: Mapping[str, Any]) -> str:
    lines = [
        f"depthgate smoke {record['smoke_test_run_id']} at {record['tested_at']}: "
        f"{'PASS' if record['overall_pass'] else 'FAIL'} (gateway {record['gateway_base_url']})",
        "",
        f"{'alias':<28} {'status':>6}  {'result':<6} resolved model",
    ]
    for r in record["results"]:
        detail = r.get("response_model_field") or ""
        status = r["http_status"] if r["http_status"] is not None else "-"
        lines.append(
            f"{r['alias']:<28} {status!s:>6}  {'pass' if r['pass'] else 'FAIL':<6} {detail}"
        )
    lines += ["", f"notes: {record['notes']}"]
    return "\n".join(lines) + "\n"


def render_markdown(record: Mapping[str, Any]) -> str:
    """The record as a job-summary table. The resolved model and the notes are the gateway's
    words: they are written through core.markdown like everything else."""
    md = Escape()
    verdict = "passed" if record["overall_pass"] else "**failed**"
    lines = [
        f"## depthgate smoke test {verdict}",
        "",
        f"Run {md.code(record['smoke_test_run_id'])} at {md.text(record['tested_at'])}, "
        f"gateway {md.text(record['gateway_base_url'])}.",
        "",
        "| alias | HTTP | result | resolved model |",
        "|---|---:|---|---|",
    ]
    for r in record["results"]:
        detail = r.get("response_model_field") or ""
        status = r["http_status"] if r["http_status"] is not None else "-"
        lines.append(
            f"| {md.code(r['alias'], table=True)} | {md.cell(status)} | "
            f"{'pass' if r['pass'] else 'FAIL'} | {md.cell(detail)} |"
        )
    if record.get("notes"):
        lines += ["", f"Notes: {md.text(record['notes'])}"]
    return "\n".join(lines) + "\n"
