"""Reading and writing the secrets that hold key sets and peppers (AWS Secrets Manager).

The store knows Secrets Manager, not what the secrets mean (``chalicelib.keys`` and
``chalicelib.rotation`` do). Faults after retries become ``BackendUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib import aws

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


class SecretStore:
    def __init__(self, sm: SecretsManagerClient) -> None:
        self._sm = sm

    def read(self, secret_id: str, stage: str = "AWSCURRENT") -> str:
        with aws.translate_faults("secretsmanager"):
            resp = self._sm.get_secret_value(SecretId=secret_id, VersionStage=stage)
        return str(resp["SecretString"])

    def fetcher(self, secret_id: str) -> Callable[[], str]:
        return lambda: self.read(secret_id)
