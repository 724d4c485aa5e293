"""moto's emulator server for the tests of chalicelib.aws_lite (which mock_aws cannot intercept).

The server runs in its own process: moto's state is global per process, and the in-process tests
that share a pytest-xdist worker reset it each time they enter ``mock_aws``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from chalicelib.config import AwsEnvironment
from infra.provision import provision

STAGE = "lite"
TABLE = f"tessera-{STAGE}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def lite_env(endpoint: str, token: str = "") -> AwsEnvironment:
    return AwsEnvironment(
        access_key_id="testing",
        secret_access_key="testing",
        session_token=token,
        region="us-east-1",
        endpoints={"AWS_ENDPOINT_URL": endpoint},
    )


class Session:
    """What infra.provision needs of a boto3 session, pointed at the emulator server."""

    region_name = "us-east-1"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self, name: str) -> Any:
        return boto3.client(
            name,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def emulator_server() -> Iterator[Session]:
    """A provisioned stack (stage ``lite``) on a fresh emulator server process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.05)
        session = Session(f"http://127.0.0.1:{port}")
        provision(session, STAGE)
        yield session
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
