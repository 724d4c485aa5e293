"""Forging access tokens and driving the authorizer like API Gateway (tests/test_authorizer*.py).

Tokens are built by hand (header, claims, signature) so that every rule of the validator can be
broken on purpose: algorithm, key, ``kid``, ``typ``, ``crit``, claims, encoding, size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import ECAlgorithm

from chalicelib import aws as aws_clients
from chalicelib import key_objects, services
from chalicelib.config import settings
from tests.conftest import AUDIENCE, ISSUER

AUTHORIZER = "tessera_authorizer"
ARN_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/api"
ALL_SCOPES = "people:read articles:read articles:write"
EVERY_ROUTE = ["GET/people", "GET/people/*", "GET/articles", "POST/articles"]


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()  # as a header or claim value: leave the member out
ATTACKER_EC = ec.generate_private_key(ec.SECP256R1())
ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def es256(key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def rs256(key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def hs256(secret: bytes, signing_input: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def jws(
    header: dict[str, Any], payload: dict[str, Any] | str, sign: Callable[[bytes], bytes]
) -> str:
    body = payload if isinstance(payload, str) else segment(payload)
    signing_input = f"{segment(header)}.{body}".encode()
    return signing_input.decode() + "." + b64(sign(signing_input))


class Forge:
    """Tokens signed with the stack's real current key unless told otherwise."""

    def __init__(self, signer: key_objects.SigningKey, now: float) -> None:
        self.signer = signer
        self.now = int(now)
        assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
        self.private_key: ec.EllipticCurvePrivateKey = signer.key

    def claims(self, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-42",
            "aud": AUDIENCE,
            "client_id": "client-7",
            "scope": ALL_SCOPES,
            "jti": secrets.token_urlsafe(16),
            "iat": self.now,
            "nbf": self.now,
            "exp": self.now + 900,
        }
        for name, value in overrides.items():
            if value is DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def header(self, **overrides: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": self.signer.kid}
        for name, value in overrides.items():
            if value is DROP:
                header.pop(name, None)
            else:
                header[name] = value
        return header

    def token(self, header: dict[str, Any] | None = None, **claims: Any) -> str:
        return jws(
            header or self.header(),
            self.claims(**claims),
            lambda data: es256(self.private_key, data),
        )

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_jwk_json(self) -> bytes:
        jwk = self.signer.verifying_key().public_jwk()
        return json.dumps(jwk).encode()


def attacker_jwk() -> dict[str, Any]:
    jwk = ECAlgorithm.to_jwk(ATTACKER_EC.public_key(), as_dict=True)
    return {**jwk, "kid": "attacker", "alg": "ES256", "use": "sig"}


def event(authorization: str, route: str = "GET/people") -> dict[str, str]:
    return {
        "type": "TOKEN",
        "authorizationToken": authorization,
        "methodArn": f"{ARN_PREFIX}/{route}",
    }


def allowed_routes(answer: dict[str, Any]) -> list[str]:
    statements = answer["policyDocument"]["Statement"]
    assert all(s["Action"] == "execute-api:Invoke" for s in statements)
    return sorted(
        r.removeprefix(ARN_PREFIX + "/")
        for s in statements
        if s["Effect"] == "Allow"
        for r in s["Resource"]
    )


def reconfigure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Change settings and rebuild services; read settings now, outside the test client's
    overlay of the local stage's variables."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    services.reset()
    settings()


class Calls:
    """Counts (and optionally fails) one AWS operation on the container's client."""

    def __init__(self, service: aws_clients.Service, event_service: str, operation: str) -> None:
        self.count = 0
        self.failing = False
        client = aws_clients.client(service)
        client.meta.events.register(f"before-call.{event_service}.{operation}", self._hook)

    def _hook(self, **kwargs: Any) -> Any:
        self.count += 1
        if not self.failing:
            return None
        response = AWSResponse("https://aws.invalid", 503, HTTPHeaders(), None)
        return response, {
            "Error": {"Code": "ServiceUnavailable", "Message": "down"},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        }


Invoke = Callable[..., dict[str, Any]]


# The authorizer's two entry points: Chalice's (``app.tessera_authorizer``, run by chalice local)
# and the plain handler the deployed function names (chalicelib/authorizer_lambda.py).
ENTRY_POINTS = ("chalice", "plain")


def invoker(client: Any, entry: str = "chalice") -> Invoke:
    """Call the authorizer Lambda the way API Gateway does (a TOKEN event), through ``entry``."""
    if entry == "plain":
        from chalicelib.authorizer_lambda import handler

        def plain(authorization: str, route: str = "GET/people") -> dict[str, Any]:
            return handler(event(authorization, route), None)

        return plain

    def call(authorization: str, route: str = "GET/people") -> dict[str, Any]:
        result: dict[str, Any] = client.lambda_.invoke(
            AUTHORIZER, event(authorization, route)
        ).payload
        return result

    return call


def rejecter(invoke: Invoke) -> Callable[[str], None]:
    """Assert API Gateway's 401: an error whose message is exactly ``Unauthorized`` (not a
    fault, which would be a 500/503, and never a policy)."""
    from chalicelib.authorizer import UNAUTHORIZED, AuthorizerUnavailable

    def check(authorization: str) -> None:
        with pytest.raises(Exception, match=f"^{UNAUTHORIZED}$") as caught:
            invoke(authorization)
        assert type(caught.value) is not AuthorizerUnavailable

    return check
