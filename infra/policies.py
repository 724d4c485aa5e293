"""The functions' IAM policy files (``.chalice/policy-*.json``) and how each deploy path reads them.

The files write every ARN with CloudFormation's pseudo parameters (``${AWS::Partition}``,
``${AWS::Region}``, ``${AWS::AccountId}``, ``${AWS::URLSuffix}``): no ``*`` for region or account
and no hard-coded ``aws`` partition, so a stage's policies name its own account and region only,
in any partition. ``make package`` turns each string holding one into ``Fn::Sub``
(:func:`to_cloudformation`); ``make deploy`` gives ``chalice deploy`` a copy with the caller's
values filled in (:func:`render`, :func:`caller_values`): Chalice sends the files to IAM as is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PSEUDO = re.compile(r"\$\{(AWS::[A-Za-z]+)\}")
KNOWN = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    unknown = {m for m in PSEUDO.findall(path.read_text()) if m not in KNOWN}
    if unknown:
        raise ValueError(f"{path.name}: unknown placeholders {sorted(unknown)}")
    return doc


def _map_strings(value: Any, fn: Any) -> Any:
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, str):
        return fn(value)
    return value


def to_cloudformation(doc: Any) -> Any:
    """The policy as a template value: each string with a placeholder becomes ``Fn::Sub``."""
    return _map_strings(doc, lambda s: {"Fn::Sub": s} if PSEUDO.search(s) else s)


def render(doc: Any, values: dict[str, str]) -> Any:
    """The policy with the placeholders replaced (``values``: pseudo parameter -> value)."""
    missing = KNOWN - set(values)
    if missing:
        raise ValueError(f"no value for {sorted(missing)}")
    return _map_strings(doc, lambda s: PSEUDO.sub(lambda m: values[m[1]], s))


def pseudo_values(partition: str, region: str, account: str, url_suffix: str) -> dict[str, str]:
    return {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::URLSuffix": url_suffix,
    }


def caller_values(session: Any) -> dict[str, str]:
    """The pseudo parameters' values for the caller's account and region (``make deploy``):
    partition from the caller's ARN, DNS suffix from botocore's partition data."""
    region = session.region_name
    if not region:
        raise SystemExit("no region: set AWS_DEFAULT_REGION (or AWS_REGION)")
    arn = session.client("sts").get_caller_identity()["Arn"]
    partition, account = arn.split(":")[1], arn.split(":")[4]
    from botocore.loaders import create_loader

    partitions = create_loader().load_data("endpoints")["partitions"]
    suffix = next(p["dnsSuffix"] for p in partitions if p["partition"] == partition)
    return pseudo_values(partition, region, account, suffix)
