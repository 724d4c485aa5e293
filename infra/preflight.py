"""Before a deployment starts: the stage's issuer and audience, and the stack parameters.

    python -m infra.preflight --stage prod --domain auth.acme.io \
        --certificate-arn arn:aws:acm:... check-stack        # make deploy-stack: refuse or pass
    python -m infra.preflight --stage prod ... stack-parameters   # its --parameter-overrides
    python -m infra.preflight --stage prod ... check-chalice      # make deploy (infra/wire.py)

The issuer is ``https://<DomainName>``. ``make deploy-stack`` takes the domain from ``DOMAIN``, else
from ``TESSERA_ISSUER`` in ``.chalice/config.json``; ``make deploy`` only from config.json, because
``chalice deploy`` sets the functions' variables from it. A stage that serves customers (its demo is
off: prod) refuses a placeholder issuer or audience (``example.com`` and the other names reserved
for examples) and a missing certificate, with one line saying what to set: tokens would carry an
``iss`` nobody can resolve. dev and local accept placeholders.
"""

from __future__ import annotations

import argparse
import sys
from typing import NamedTuple
from urllib.parse import urlsplit

from infra.package import is_placeholder, serves_customers, stage_config


class Refused(Exception):
    """A one-line reason this deployment must not start."""


class DeploySettings(NamedTuple):
    """What the person deploying gives (make variables DOMAIN, CERTIFICATE_ARN, ...)."""

    domain: str = ""
    certificate_arn: str = ""
    hosted_zone_id: str = ""
    audience: str = ""
    web_acl_arn: str = ""
    alarm_topic_arn: str = ""
    alarm_email: str = ""


# DeploySettings field -> (command-line option, make variable, stack parameter)
OPTIONS = {
    "domain": ("--domain", "DOMAIN", "DomainName"),
    "certificate_arn": ("--certificate-arn", "CERTIFICATE_ARN", "CertificateArn"),
    "hosted_zone_id": ("--hosted-zone-id", "HOSTED_ZONE_ID", "HostedZoneId"),
    "audience": ("--audience", "AUDIENCE", "Audience"),
    "web_acl_arn": ("--web-acl-arn", "WEB_ACL_ARN", "WebAclArn"),
    "alarm_topic_arn": ("--alarm-topic-arn", "ALARM_TOPIC_ARN", "AlarmTopicArn"),
    "alarm_email": ("--alarm-email", "ALARM_EMAIL", "AlarmEmail"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for field, (option, variable, parameter) in OPTIONS.items():
        parser.add_argument(option, dest=field, default="", help=f"{variable} ({parameter})")


def settings_from(args: argparse.Namespace) -> DeploySettings:
    return DeploySettings(**{f: getattr(args, f).strip() for f in OPTIONS})


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "") if "//" in url else url


def _config(stage: str) -> tuple[str, str]:
    env = stage_config(stage)["env"]
    return env.get("TESSERA_ISSUER", "").rstrip("/"), env.get("TESSERA_AUDIENCE", "")


def _check(stage: str, issuer: str, audience: str, s: DeploySettings, how: dict[str, str]) -> None:
    if not serves_customers(stage):
        return
    for what, value in (("issuer", issuer), ("audience", audience)):
        if is_placeholder(value):
            raise Refused(
                f"stage {stage}: the {what} {value or '(none)'} is a placeholder; {how[what]}"
            )
    if not s.certificate_arn:
        raise Refused(
            f"stage {stage}: CERTIFICATE_ARN is required (an ACM certificate for "
            f"{host_of(issuer)} in this region), so that the issuer {issuer} resolves to this API"
        )


def check_stack(stage: str, s: DeploySettings) -> None:
    """``make deploy-stack``: DOMAIN/AUDIENCE given, else the stage's values in config.json."""
    issuer, audience = _config(stage)
    issuer = f"https://{s.domain}" if s.domain else issuer
    _check(
        stage,
        issuer,
        s.audience or audience,
        s,
        {
            "issuer": "give DOMAIN=<the issuer's host name> (or set TESSERA_ISSUER in "
            ".chalice/config.json)",
            "audience": "give AUDIENCE=<your APIs' identifier> (or set TESSERA_AUDIENCE in "
            ".chalice/config.json)",
        },
    )


def check_chalice(stage: str, s: DeploySettings) -> None:
    """``make deploy``: the functions get config.json's variables, so DOMAIN and AUDIENCE may only
    repeat them."""
    issuer, audience = _config(stage)
    where = f'in the "{stage}" block of .chalice/config.json'
    if s.domain and f"https://{s.domain}" != issuer:
        raise Refused(
            f"stage {stage}: make deploy takes the issuer from TESSERA_ISSUER {where} "
            f"({issuer}); set it to https://{s.domain}"
        )
    if s.audience and s.audience != audience:
        raise Refused(
            f"stage {stage}: make deploy takes the audience from TESSERA_AUDIENCE {where} "
            f"({audience}); set it to {s.audience}"
        )
    _check(
        stage,
        issuer,
        audience,
        s,
        {
            "issuer": f"set TESSERA_ISSUER {where} to https://<your issuer's host name>",
            "audience": f"set TESSERA_AUDIENCE {where} to your APIs' identifier",
        },
    )


def stack_parameters(stage: str, s: DeploySettings) -> list[str]:
    """``Key=Value`` overrides for the packaged stack: the stage and every setting given."""
    found = [f"Stage={stage}"]
    for field, (_, _, parameter) in OPTIONS.items():
        value = getattr(s, field)
        if value:
            found.append(f"{parameter}={value}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.preflight", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stage", default="dev")
    add_arguments(parser)
    parser.add_argument("action", choices=["check-stack", "check-chalice", "stack-parameters"])
    args = parser.parse_args(argv)
    s = settings_from(args)
    try:
        if args.action == "check-chalice":
            check_chalice(args.stage, s)
        else:
            check_stack(args.stage, s)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.action == "stack-parameters":
        print(" ".join(stack_parameters(args.stage, s)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
