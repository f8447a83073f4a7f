"""POST /webhook: the signature vectors and every webhook bad input of threats.md (T11-T13), the
real payload examples (validated against the bundled schema), healthz and metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator

from depthgate.app import App, JobResult
from depthgate.app.metrics import Metrics
from depthgate.app.queue import Queue
from depthgate.app.server import create_app
from depthgate.app.settings import AppSettings
from depthgate.app.signature import Verdict, sign, verify
from depthgate.app.surface import REVIEW_EVENTS
from tests.app.helpers import DATA, SECRET, LiveServer, body_of, example, headers, pr_payload

VECTORS = [
    (
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    ),
    (
        "mysecret",
        b'{"foo":"bar"}',
        "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3",
    ),
    (
        "mysecret",
        b'{\n  "foo": "bar"\n}\n',
        "sha256=e3eccac34c43c7dc1cbb905488b1b81347fcc700a7b025697a9d07862256023f",
    ),
]


@pytest.mark.parametrize(("secret", "payload", "expected"), VECTORS)
def test_signature_vectors(secret: str, payload: bytes, expected: str) -> None:
    assert sign(secret, payload) == expected
    assert verify(payload, expected, [secret]) is Verdict.OK
    assert verify(payload, expected, ["other", secret]) is Verdict.OK  # rotation: either one


class Env:
    def __init__(self, settings: AppSettings, app: App) -> None:
        self.queue = Queue(settings)
        self.metrics = Metrics()
        self.live = LiveServer(create_app(app, self.queue, settings, self.metrics))
        self.client = httpx.Client(base_url="http://127.0.0.1", timeout=30)

    def __enter__(self) -> Env:
        self.live.__enter__()
        self.client.base_url = httpx.URL(self.live.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.live.__exit__()
        self.queue.close()

    def post(self, body: bytes, **kw: Any) -> Any:
        extra = kw.pop("extra_headers", {})
        drop = kw.pop("drop", ())
        hdrs = {**headers(body, **kw), **extra}
        for name in drop:
            hdrs.pop(name)
        return self.client.post("/webhook", content=body, headers=hdrs)

    def stored(self) -> int:
        """Deliveries that reached the store (jobs queued or collapsed), queue messages."""
        return self.queue.store.active_count() + self.queue.ready_count()


def review_app() -> App:
    app = App()
    app.on(*REVIEW_EVENTS)(lambda ctx: JobResult("success"))
    return app


@pytest.fixture
def env(settings: AppSettings) -> Iterator[Env]:
    with Env(settings, review_app()) as e:
        yield e


def test_a_signed_pr_delivery_is_queued(env: Env) -> None:
    r = env.post(body_of(pr_payload()), delivery="d-1")
    assert r.status_code == 202
    assert r.json()["outcome"] == "queued"
    assert env.queue.store.delivery_seen("d-1")
    assert env.queue.ready_count() == 1


def test_the_previous_secret_is_accepted_during_rotation(tmp_path: Path, rsa_keys: Any) -> None:
    s = AppSettings(
        webhook_secrets=("new-secret", SECRET),
        queue_url=f"sqlite:///{tmp_path / 'q.db'}",
        app_id="1",
        private_key=rsa_keys[0],
    )
    with Env(s, review_app()) as e:
        assert e.post(body_of(pr_payload())).status_code == 202  # signed with the old one
        assert e.post(body_of(pr_payload(number=8)), secret="new-secret").status_code == 202
        assert e.post(body_of(pr_payload(number=9)), secret="third").status_code == 401


def _resign(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(SECRET, body)}


@pytest.mark.parametrize(
    "case",
    [
        "one_byte_changed",
        "wrong_secret",
        "missing_header",
        "sha1_only",
        "no_sha256_prefix",
        "truncated_hex",
        "reserialized_json",
        "empty_signature",
        "non_hex",
    ],
)
def test_forged_deliveries_are_refused_before_any_parse_or_write(
    env: Env, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{\n  "action": "opened", "number": 7\n}\n'
    good = sign(SECRET, body)
    sent = body
    extra: dict[str, str] = {}
    drop: tuple[str, ...] = ()
    if case == "one_byte_changed":
        sent = body.replace(b"7", b"8")
        extra = {"X-Hub-Signature-256": good}
    elif case == "wrong_secret":
        extra = {"X-Hub-Signature-256": sign("not-the-secret", body)}
    elif case == "missing_header":
        drop = ("X-Hub-Signature-256",)
    elif case == "sha1_only":
        drop = ("X-Hub-Signature-256",)
        extra = {"X-Hub-Signature": "sha1=" + "0" * 40}
    elif case == "no_sha256_prefix":
        extra = {"X-Hub-Signature-256": good.removeprefix("sha256=")}
    elif case == "truncated_hex":
        extra = {"X-Hub-Signature-256": good[:-2]}
    elif case == "reserialized_json":
        # GitHub signed its bytes; the same JSON re-serialized is other bytes
        sent = json.dumps(json.loads(body), separators=(",", ":")).encode()
        extra = {"X-Hub-Signature-256": good}
    elif case == "empty_signature":
        extra = {"X-Hub-Signature-256": ""}
    elif case == "non_hex":
        extra = {"X-Hub-Signature-256": "sha256=" + "z" * 64}
    r = env.post(sent, extra_headers=extra, drop=drop)
    assert r.status_code == 401
    assert r.json()["outcome"] == "bad_signature"
    assert env.stored() == 0
    # the operator's log line says what to check
    assert any("DEPTHGATE_WEBHOOK_SECRET" in m or "X-Hub-Signature" in m for m in caplog.messages)


def test_a_mismatch_log_line_names_the_secret_to_check(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    body = body_of(pr_payload())
    env.post(body, secret="wrong")
    line = next(m for m in caplog.messages if "refused" in m)
    assert "DEPTHGATE_WEBHOOK_SECRET" in line
    assert "DEPTHGATE_WEBHOOK_SECRET_PREVIOUS" in line
    assert SECRET not in line


def test_bodies_over_the_cap_get_413_without_being_read_whole(env: Env) -> None:
    body = b"x" * (30 * 1024 * 1024)
    r = env.post(body, extra_headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert r.status_code == 413
    assert env.stored() == 0


def test_a_streamed_body_over_the_cap_gets_413(tmp_path: Path, rsa_keys: Any) -> None:
    s = AppSettings(
        webhook_secrets=(SECRET,),
        queue_url=f"sqlite:///{tmp_path / 'q.db'}",
        max_body_bytes=1000,
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * 400

    with Env(s, review_app()) as e:
        r = e.client.post("/webhook", content=chunks(), headers={"X-GitHub-Event": "pull_request"})
        assert r.status_code == 413


def test_non_post_methods_are_405(env: Env) -> None:
    assert env.client.get("/webhook").status_code == 405
    assert env.client.put("/webhook", content=b"{}").status_code == 405
    assert env.stored() == 0


def test_ping_is_200(env: Env) -> None:
    body = body_of(example("other/ping.with-app_id.payload.json"))
    r = env.post(body, event="ping")
    assert r.status_code == 200
    assert r.json()["outcome"] == "ping"
    assert env.stored() == 0


@pytest.mark.parametrize(
    ("change", "status", "outcome"),
    [
        ("missing_event", 400, "bad_request"),
        ("missing_delivery", 400, "bad_request"),
        ("unknown_event", 202, "ignored"),
        ("unknown_action", 202, "ignored"),
        ("invalid_json", 400, "bad_request"),
        ("form_encoded", 415, "unsupported_media_type"),
        ("not_an_object", 202, "ignored"),
        ("draft", 202, "ignored"),
        ("closed_reopened_state", 202, "ignored"),
        ("no_installation", 202, "ignored"),
        ("pr_without_head", 400, "bad_request"),
    ],
)
def test_bad_inputs_have_a_clear_outcome(env: Env, change: str, status: int, outcome: str) -> None:
    payload: Any = pr_payload()
    event = "pull_request"
    drop: tuple[str, ...] = ()
    ctype: dict[str, str] = {}
    if change == "missing_event":
        drop = ("X-GitHub-Event",)
    elif change == "missing_delivery":
        drop = ("X-GitHub-Delivery",)
    elif change == "unknown_event":
        event = "pull_requestx"
    elif change == "unknown_action":
        payload["action"] = "labeled"
    elif change == "not_an_object":
        payload = [1, 2]
    elif change == "draft":
        payload["pull_request"]["draft"] = True
    elif change == "closed_reopened_state":
        payload["pull_request"]["state"] = "closed"
    elif change == "no_installation":
        del payload["installation"]
    elif change == "pr_without_head":
        del payload["pull_request"]["head"]
    body = body_of(payload)
    if change == "invalid_json":
        body = b'{"action": "opened", '
    elif change == "form_encoded":
        body = b"payload=" + body_of(payload)
        ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    hdrs = {**headers(body, event=event), **ctype}
    for name in drop:
        hdrs.pop(name)
    r = env.client.post("/webhook", content=body, headers=hdrs)
    assert (r.status_code, r.json()["outcome"]) == (status, outcome)
    assert env.stored() == 0


def test_a_fork_pr_is_reviewed(env: Env) -> None:
    payload = pr_payload()
    payload["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    payload["pull_request"]["head"]["repo"]["fork"] = True
    r = env.post(body_of(payload))
    assert r.json()["outcome"] == "queued"


def test_replayed_delivery_is_a_duplicate(env: Env) -> None:
    body = body_of(pr_payload())
    assert env.post(body, delivery="same").json()["outcome"] == "queued"
    assert env.post(body, delivery="same").json()["outcome"] == "duplicate"
    assert env.queue.ready_count() == 1


def test_a_new_delivery_for_the_same_head_collapses(env: Env) -> None:
    assert env.post(body_of(pr_payload())).json()["outcome"] == "queued"
    r = env.post(body_of(pr_payload(action="reopened")))
    assert r.json()["outcome"] == "collapsed"
    assert env.queue.ready_count() == 1


def test_a_5xx_before_persisting_then_a_redelivery_is_queued_once(env: Env) -> None:
    body = body_of(pr_payload())
    real = env.queue.store.accept
    calls = {"n": 0}

    def flaky(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(*args)

    env.queue.store.accept = flaky  # type: ignore[method-assign,assignment]
    first = env.post(body, delivery="redo")
    assert first.status_code == 500
    assert env.stored() == 0
    second = env.post(body, delivery="redo")
    assert (second.status_code, second.json()["outcome"]) == (202, "queued")
    third = env.post(body, delivery="redo")
    assert third.json()["outcome"] == "duplicate"
    assert env.queue.ready_count() == 1


@cache
def _definitions() -> dict[str, Any]:
    data = json.loads((DATA / "octokit-webhooks-schemas-7.6.1.bundled.schema.json").read_text())
    assert isinstance(data, dict)
    return dict(data["definitions"])


EXPECTED = {
    "opened": "queued",
    "reopened": "queued",
    "synchronize": "queued",
    "ready_for_review": "queued",
    "closed": "ignored",
    "converted_to_draft": "ignored",
}


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(DATA).as_posix() for p in DATA.glob("*/*.json"))
)
def test_real_payload_examples(env: Env, path: str) -> None:
    payload = example(path)
    event = path.split("/", maxsplit=1)[0]
    if event == "other":
        event = path.split("/")[1].split(".", maxsplit=1)[0]
    name = f"{event}${payload.get('action', 'event')}"
    validator = Draft7Validator({"$ref": f"#/definitions/{name}", "definitions": _definitions()})
    assert not list(validator.iter_errors(payload))  # the example is what GitHub sends
    payload.setdefault("installation", {"id": 5, "node_id": "x"})  # App deliveries carry it
    r = env.post(body_of(payload), event=event)
    if event == "ping":
        assert r.status_code == 200
        return
    action = str(payload.get("action"))
    draft = bool(payload.get("pull_request", {}).get("draft"))
    want = EXPECTED.get(action, "ignored") if event == "pull_request" else "ignored"
    if draft:
        want = "ignored"
    assert (r.status_code, r.json()["outcome"]) == (202, want)


def test_healthz_and_metrics(env: Env) -> None:
    assert env.client.get("/healthz").json() == {"status": "ok"}
    env.post(body_of(pr_payload()))
    env.post(body_of(pr_payload()), secret="wrong")
    text = env.client.get("/metrics").text
    assert 'depthgate_webhook_deliveries_total{outcome="queued"} 1.0' in text
    assert 'depthgate_webhook_deliveries_total{outcome="bad_signature"} 1.0' in text
    assert "depthgate_webhook_ack_seconds_bucket" in text


def test_healthz_is_503_when_the_queue_is_unreachable(env: Env) -> None:
    def broken() -> None:
        raise OSError("unable to open database file")

    env.queue.store.ping = broken  # type: ignore[method-assign]
    r = env.client.get("/healthz")
    assert r.status_code == 503
