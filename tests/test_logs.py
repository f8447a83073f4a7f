"""The redacting log formatter (depthgate.logs): what a library logs -- a request URL, an
exception's text -- leaves without the gateway's address or any secret."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from depthgate.cli.main import main
from depthgate.logs import RedactingFormatter, install, protect

KEY = "sk-canary-gateway-key-" + "fedcba9876543210"
URL = "https://gw.internal.example:8443/proxy"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(name)s: %(message)s"))
    log = logging.getLogger("depthgate.test.logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        yield out
    finally:
        log.removeHandler(handler)
        log.propagate = True


def test_messages_arguments_and_tracebacks_are_redacted(stream: io.StringIO) -> None:
    protect([KEY], [URL])
    log = logging.getLogger("depthgate.test.logs")
    log.warning("HTTP Request: POST %s/v1/chat/completions key=%s", URL, KEY)
    try:
        raise RuntimeError(f"gateway at gw.internal.example:8443 said no to {KEY}")
    except RuntimeError:
        log.exception("failed")
    text = stream.getvalue()
    assert KEY not in text
    assert "gw.internal.example" not in text
    assert "[REDACTED]/v1/chat/completions" in text
    assert "RuntimeError" in text  # the traceback is still there, redacted


def test_credential_shapes_are_redacted_without_being_configured(stream: io.StringIO) -> None:
    token = "ghp_" + "Zq9" * 12
    logging.getLogger("depthgate.test.logs").warning("token %s", token)
    assert token not in stream.getvalue()


def test_show_host_keeps_the_host_but_not_the_url(stream: io.StringIO) -> None:
    url = "https://shown-host-q8z7.invalid/base"
    protect([], [url], show_host=True)
    logging.getLogger("depthgate.test.logs").warning(
        "calling %s/v1/x at shown-host-q8z7.invalid", url
    )
    text = stream.getvalue()
    assert url not in text
    assert "at shown-host-q8z7.invalid" in text


def test_install_wraps_existing_handlers_and_keeps_their_format() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("<%(levelname)s> %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install({"DEPTHGATE_GATEWAY_KEY": KEY})
        assert isinstance(handler.formatter, RedactingFormatter)
        logging.getLogger("depthgate.test.other").warning("key is %s", KEY)
    finally:
        root.removeHandler(handler)
    assert out.getvalue() == "<WARNING> key is [REDACTED]\n"


def test_plan_output_holds_no_credential_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "ghp_" + "Yx7" * 12
    diff = tmp_path / "x.diff"
    diff.write_text(
        f"diff --git a/{token}.py b/{token}.py\n--- a/{token}.py\n+++ b/{token}.py\n"
        f"@@ -1,1 +1,2 @@ def f(key='{token}'):\n x = 1\n+y = 2\n"
    )
    for fmt in ("json", "text"):
        assert main(["plan", "--diff", str(diff), "--format", fmt, "-v"]) == 0
        out = capsys.readouterr().out
        assert token not in out
        assert "[REDACTED]" in out
