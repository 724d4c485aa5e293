"""Another team's Chalice app under ``chalice local``, behind Tessera's authorizer (make local).

    python -m infra.local_attached --project-dir examples/orders --port 8001 --api orders-local/api

``chalice local`` does not run a ``CustomAuthorizer``: it admits every request on such a route.
Here infra/local_gateway.py answers those routes as API Gateway would with the function the
authorizer's ARN names in AWS, Tessera's deployed entry point
(``chalicelib.authorizer_lambda.handler``): a REST TOKEN event whose method ARN names ``--api``
(the ``<api-id>/<stage>`` the app's rule set is bound to), the policy evaluated like IAM, RFC 6750
answers. The authorizer reads Tessera's local stage settings (.chalice/config.json) and the
emulator that ``infra.local_stack``, which starts this process, points it at. The app itself is
imported by Chalice from its own project directory, with its own .chalice/config.json; it must not
be named like a Tessera package (``chalicelib``), since both share this interpreter.

What differs from AWS: the authorizer runs in this process, not as a Lambda invoked by API
Gateway, and every request calls it (API Gateway caches each answer for the authorizer's TTL);
see infra/local_gateway.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local_attached", description=__doc__)
    parser.add_argument("--project-dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--api", required=True, help="<api-id>/<stage> the app is known by")
    parser.add_argument("--stage", default="local", help="the app's and Tessera's chalice stage")
    args = parser.parse_args(argv)

    from infra.local_stack import HOST, tessera_env, widen_backlog

    # What the parent set (issuer, emulator endpoint, credentials) wins over the config file.
    for name, value in tessera_env(args.stage).items():
        os.environ.setdefault(name, value)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from click.exceptions import Abort

    from infra import local_gateway

    local_gateway.install(args.api)
    widen_backlog()
    from chalice.cli import cli

    with contextlib.suppress(KeyboardInterrupt, Abort):
        cli.main(
            args=[
                "--project-dir",
                str(args.project_dir.resolve()),
                "local",
                "--stage",
                args.stage,
                "--host",
                HOST,
                "--port",
                str(args.port),
                "--no-autoreload",
            ],
            prog_name="chalice",
            obj={},
            standalone_mode=False,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
