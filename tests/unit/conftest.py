"""Unit tests: pure logic, no AWS, no app. Any botocore request fails the test, so a test that
needs AWS belongs in tests/functional/."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.endpoint

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test sent an AWS request: move it to tests/functional/")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)
