"""Cost per million operations from measured compute and round trips, at published AWS prices.

Prices are us-east-1 list prices, read on 2026-11-27 from the pages in ``SOURCES`` (the AWS
pricing pages themselves are quoted by those pages; check them before relying on a figure).
Model (stated in BENCHMARKS.md): billed Lambda duration = CPU time scaled to the configured
memory's CPU share (1,769 MB = 1 vCPU) + an assumed latency per DynamoDB round trip, rounded up
to whole milliseconds; DynamoDB units from the requests actually sent; Secrets Manager reads
amortised by the container cache; one API Gateway REST request per operation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

READ_DATE = "2026-11-27"
REGION = "us-east-1"
STAGE = "prod"  # priced as this stage deploys its functions (.chalice/config.json)
VCPU_MB = 1769
DDB_LATENCY_MS = 4.0  # AWS: "single-digit millisecond" per call; an assumption, not measured
KEY_CACHE_TTL_S = 300
ASSUMED_RPS_PER_CONTAINER = 10.0  # for amortising the key-set reads

PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_gb_s_x86_64": 0.0000166667,
    "ddb_rru": 0.125 / 1e6,
    "ddb_wru": 0.625 / 1e6,
    "secrets_call": 0.05 / 10_000,
    "apigw_rest_request": 3.50 / 1e6,
    "cognito_m2m_request": 2.25 / 1_000,
    "cognito_m2m_client_month": 6.00,
}

# (what, the AWS page, where it was read)
SOURCES = [
    (
        "AWS Lambda: $0.20/M requests; $0.0000166667 (x86) and $0.0000133334 (Arm) per GB-s",
        "https://aws.amazon.com/lambda/pricing/",
        "https://cloudchipr.com/blog/aws-lambda-pricing",
    ),
    (
        "DynamoDB on-demand (after the Nov 2024 cut): $0.125/M read, $0.625/M write units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21)",
    ),
    (
        "Secrets Manager: $0.05 per 10,000 API calls",
        "https://aws.amazon.com/secrets-manager/pricing/",
        "https://hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-credentials-kms",
    ),
    (
        "API Gateway REST API: $3.50 per million requests (first 333 M a month)",
        "https://aws.amazon.com/api-gateway/pricing/",
        "https://www.logicata.com/blog/aws-api-gateway-pricing/",
    ),
    (
        "Cognito M2M: $2.25 per 1,000 token requests (first tier) + $6 per app client a month",
        "https://aws.amazon.com/cognito/pricing/",
        "https://cur.vantage-api.com/aws/amazoncognito/user-pools-m2m/cupm2mtokenrequestsfull"
        " (2025-04-27)",
    ),
]

WRITE_OPS = {"PutItem": 1.0, "UpdateItem": 1.0, "DeleteItem": 1.0}


def ddb_units(calls: dict[str, float], items: dict[str, float]) -> tuple[float, float]:
    """(read units, write units) per operation from the calls sent (items <= 1 KB / 4 KB).

    ``items`` counts the items a batch or transaction names; strongly consistent reads (what the
    stores use) cost 1 RRU, transactional reads and writes 2 units per item.
    """
    rru = calls.get("GetItem", 0.0) + calls.get("Query", 0.0)
    rru += items.get("BatchGetItem", 0.0)
    rru += 2 * items.get("TransactGetItems", 0.0)
    wru = sum(calls.get(op, 0.0) * w for op, w in WRITE_OPS.items())
    wru += items.get("BatchWriteItem", 0.0)
    wru += 2 * items.get("TransactWriteItems", 0.0)
    return rru, wru


def deployed(function: str | None = None, stage: str = STAGE) -> tuple[int, str]:
    """(memory MB, architecture) of a function as ``stage`` deploys it (None: the API handler)."""
    config = json.loads(
        (Path(__file__).resolve().parent.parent / ".chalice/config.json").read_text()
    )
    found = {k: v for k, v in config.items() if k != "stages"}
    found.update(config["stages"][stage])
    if function is not None:
        found.update(config["stages"][stage].get("lambda_functions", {}).get(function, {}))
    return int(found.get("lambda_memory_size", 128)), str(
        found.get("lambda_architecture", "x86_64")
    )


MEMORY_MB, ARCH = deployed()  # the API handler's
AUTHORIZER_MEMORY_MB, _ = deployed("tessera_authorizer")


def per_million(
    cpu_us: float,
    calls: dict[str, float],
    items: dict[str, float],
    extra_cpu_ms: float = 0.0,
    memory_mb: int = MEMORY_MB,
) -> dict[str, Any]:
    ddb_calls = sum(v for k, v in calls.items() if k != "GetSecretValue")
    share = min(1.0, memory_mb / VCPU_MB)
    busy_ms = (cpu_us / 1000 + extra_cpu_ms) / share
    billed_ms = math.ceil(busy_ms + ddb_calls * DDB_LATENCY_MS)
    rru, wru = ddb_units(calls, items)
    secrets_per_op = 2 / (KEY_CACHE_TTL_S * ASSUMED_RPS_PER_CONTAINER)
    lines = {
        "api_gateway": 1e6 * PRICES["apigw_rest_request"],
        "lambda_requests": 1e6 * PRICES["lambda_request"],
        "lambda_duration": 1e6
        * billed_ms
        / 1000
        * memory_mb
        / 1024
        * PRICES[f"lambda_gb_s_{ARCH}"],
        "dynamodb": 1e6 * (rru * PRICES["ddb_rru"] + wru * PRICES["ddb_wru"]),
        "secrets_manager": 1e6 * secrets_per_op * PRICES["secrets_call"],
    }
    return {
        "billed_ms": billed_ms,
        "rru": rru,
        "wru": wru,
        "lines": lines,
        "total": sum(lines.values()),
    }


def cognito_per_million() -> float:
    return 1e6 * PRICES["cognito_m2m_request"]
