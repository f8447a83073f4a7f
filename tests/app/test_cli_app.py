"""serve / worker: configuration errors are one clear line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import io

import pytest

from depthgate.app.cli import add_app_parsers, run_app_command


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_app_parsers(parser.add_subparsers(dest="command"))
    err = io.StringIO()
    code = run_app_command(parser.parse_args(argv), env=env, out=io.StringIO(), err=err)
    return code, err.getvalue()


@pytest.fixture
def env(rsa_keys: tuple[str, str], tmp_path: object) -> dict[str, str]:
    return {
        "DEPTHGATE_WEBHOOK_SECRET": "s3cret-value",
        "DEPTHGATE_APP_ID": "1",
        "DEPTHGATE_PRIVATE_KEY": rsa_keys[0],
        "DEPTHGATE_QUEUE_URL": f"sqlite:///{tmp_path}/q.db",
    }


@pytest.mark.parametrize(
    ("argv", "change", "message"),
    [
        (["serve"], {"DEPTHGATE_WEBHOOK_SECRET": ""}, "DEPTHGATE_WEBHOOK_SECRET is not set"),
        (["serve"], {"DEPTHGATE_QUEUE_URL": "postgres://x/y"}, "unsupported queue"),
        (["worker"], {"DEPTHGATE_APP_ID": ""}, "DEPTHGATE_APP_ID"),
        (["worker"], {"DEPTHGATE_PRIVATE_KEY": "not a key"}, "not a PEM private key"),
        (
            ["serve"],
            {"DEPTHGATE_PRIVATE_KEY_PATH": "/nonexistent.pem", "DEPTHGATE_PRIVATE_KEY": ""},
            "cannot be read",
        ),
        (["serve"], {"DEPTHGATE_JOB_LEASE_S": "soon"}, "expected a number"),
        (["serve", "--handlers", "depthgate.app.no_such_module"], {}, "cannot be imported"),
        (
            ["worker", "--handlers", "depthgate.core.errors"],
            {},
            "neither register(app) nor review_job",
        ),
    ],
)
def test_configuration_errors(
    env: dict[str, str], argv: list[str], change: dict[str, str], message: str
) -> None:
    code, err = run([*argv, "--log-level", "ERROR"], {**env, **change})
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert "s3cret-value" not in err
