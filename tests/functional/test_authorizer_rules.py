"""The authorizer's validation rules, one forged token per way of breaking them
("Access tokens and their validation", RFC 9068, RFC 8725, RFC 6750), and the
policy it answers for valid tokens.

Each case is a realistic API Gateway TOKEN event sent through
``chalice.test.Client().lambda_.invoke``. API Gateway reads three outcomes: a policy, the exact
error message ``Unauthorized`` (401), or any other error (500/503). Every forged token must end in
``Unauthorized``. These cases change nothing in the world, so they share one (module scope) to
keep the suite fast; tests that move the clock, break the key store or change settings are in
tests/functional/test_authorizer.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from chalicelib.core.clock import FakeClock
from chalicelib.core.config import settings
from chalicelib.tokens import access_tokens
from chalicelib.web import services
from infra.local_gateway import policy_allows
from infra.provision import provision
from infra.seed import LOCAL_DEMO_API, seed_demo_rules, seed_secrets
from tests.functional.authorizer_support import (
    ALL_SCOPES,
    ARN_PREFIX,
    ATTACKER_EC,
    ATTACKER_RSA,
    AUTHORIZER,
    DROP,
    ENTRY_POINTS,
    EVERY_ROUTE,
    Forge,
    Invoke,
    allowed_routes,
    attacker_jwk,
    b64,
    es256,
    invoker,
    jws,
    rejecter,
    rs256,
    segment,
)
from tests.functional.conftest import AUDIENCE, DEMO_APIS, ISSUER, STAGE, T0, TEST_ENV


@dataclass
class World:
    client: Any
    forge: Forge


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One provisioned emulator for the whole module (nothing here writes to it)."""
    from chalice.test import Client

    import app as app_module

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
                mp.delenv(name)
        for name, value in TEST_ENV.items():
            mp.setenv(name, value)
        clock = FakeClock(T0)
        with mock_aws():
            session = boto3.Session(region_name="us-east-1")
            provision(session, STAGE)
            seed_secrets(session, STAGE, now=int(T0))
            seed_demo_rules(session, STAGE, DEMO_APIS, now=int(T0))
            services.set_clock(clock)
            settings()  # pinned before the test client overlays the local stage's variables
            with Client(app_module.app, stage_name="local") as client:
                yield World(client, Forge(services.signing_keys().current(), clock.now()))
            services.set_clock(FakeClock(T0))


@pytest.fixture
def forge(world: World) -> Forge:
    return world.forge


@pytest.fixture(params=ENTRY_POINTS)
def invoke(world: World, request: pytest.FixtureRequest) -> Invoke:
    return invoker(world.client, request.param)


@pytest.fixture
def rejects(invoke: Invoke) -> Callable[[str], None]:
    return rejecter(invoke)


# --- a valid token -------------------------------------------------------------------------


def test_valid_token_is_allowed_every_route_its_scopes_permit(invoke, forge):
    answer = invoke("Bearer " + forge.token())
    assert allowed_routes(answer) == sorted(EVERY_ROUTE)


def test_policy_does_not_depend_on_the_route_being_called(invoke, forge):
    token = forge.token(scope="people:read")
    first = invoke("Bearer " + token, "GET/people/ada")
    second = invoke("Bearer " + token, "GET/articles")
    assert first["policyDocument"] == second["policyDocument"]


@pytest.mark.parametrize(
    ("scope", "routes"),
    [
        ("people:read", ["GET/people", "GET/people/*"]),
        ("articles:read", ["GET/articles"]),
        ("articles:write", ["POST/articles"]),
        ("people:read articles:write", ["GET/people", "GET/people/*", "POST/articles"]),
        ("articles:read articles:write", ["GET/articles", "POST/articles"]),
        (ALL_SCOPES + " openid", EVERY_ROUTE),
    ],
)
def test_policy_allows_exactly_the_routes_of_the_scopes(invoke, forge, scope, routes):
    assert allowed_routes(invoke("Bearer " + forge.token(scope=scope))) == sorted(routes)


@pytest.mark.parametrize("scope", ["", "openid", "people:write", "PEOPLE:READ", "people"])
def test_token_without_any_route_scope_gets_an_explicit_deny(invoke, forge, scope):
    answer = invoke("Bearer " + forge.token(scope=scope))
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [ARN_PREFIX + "/*"]}
    ]


def test_path_parameter_wildcard_never_lets_a_deeper_route_through(invoke, forge):
    answer = invoke("Bearer " + forge.token(scope="people:read"), "GET/people/grace")
    allow, deny = answer["policyDocument"]["Statement"]
    assert f"{ARN_PREFIX}/GET/people/*" in allow["Resource"]
    assert deny["Effect"] == "Deny"
    for deeper in ("GET/people/grace/salary", "GET/people/grace/a/b", "GET/people/"):
        assert not policy_allows(answer["policyDocument"], f"{ARN_PREFIX}/{deeper}")
    assert policy_allows(answer["policyDocument"], f"{ARN_PREFIX}/GET/people/ada")


@pytest.mark.parametrize("api", ["zz99yy88xx/api", "a1b2c3d4e5/prod"])
def test_api_without_registered_rules_gets_an_explicit_deny(world, forge, api):
    other = f"arn:aws:execute-api:us-east-1:123456789012:{api}"
    answer = world.client.lambda_.invoke(
        AUTHORIZER,
        {
            "type": "TOKEN",
            "authorizationToken": "Bearer " + forge.token(),
            "methodArn": other + "/GET/people",
        },
    ).payload
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [other + "/*"]}
    ]


def test_policy_names_the_api_and_stage_of_the_call(world, forge):
    # The demo's rules are bound to the local gateway's name too
    # (tests.functional.conftest.DEMO_APIS).
    other = f"arn:aws:execute-api:eu-west-1:210987654321:{LOCAL_DEMO_API}"
    answer = world.client.lambda_.invoke(
        AUTHORIZER,
        {
            "type": "TOKEN",
            "authorizationToken": "Bearer " + forge.token(),
            "methodArn": other + "/GET/people",
        },
    ).payload
    resources = [r for s in answer["policyDocument"]["Statement"] for r in s["Resource"]]
    assert resources
    assert all(r.startswith(other + "/") for r in resources)


def test_context_is_flat_strings_naming_the_caller(invoke, forge):
    token = forge.token(sub="user-42", client_id="client-7", jti="jti-1", scope="people:read")
    answer = invoke("Bearer " + token)
    assert answer["principalId"] == "user-42"
    assert answer["context"] == {
        "sub": "user-42",
        "client_id": "client-7",
        "scope": "people:read",
        "jti": "jti-1",
    }
    assert all(isinstance(v, str) for v in answer["context"].values())


# --- the Authorization header ----------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(invoke, forge, scheme):
    assert allowed_routes(invoke(f"{scheme} {forge.token()}"))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: t, id="no-scheme"),
        pytest.param(lambda t: "Bearer", id="scheme-only"),
        pytest.param(lambda t: "Bearer ", id="scheme-and-space"),
        pytest.param(lambda t: "Basic " + t, id="basic-scheme"),
        pytest.param(lambda t: "Token " + t, id="other-scheme"),
        pytest.param(lambda t: f"Bearer {t} {t}", id="two-tokens"),
        pytest.param(lambda t: f"Bearer {t}, Bearer {t}", id="two-credentials"),
        pytest.param(lambda t: f"Bearer\t{t}", id="tab-separator"),
        pytest.param(lambda t: f"Bearer {t}\nX: y", id="header-injection"),
        pytest.param(lambda t: "Bearer" + t, id="no-separator"),
    ],
)
def test_authorization_header_must_hold_exactly_one_bearer_token(rejects, forge, make):
    rejects(make(forge.token()))


# --- forged tokens: every rule ---------------------------------------------------------------


def test_none_algorithm_with_empty_signature_is_rejected(rejects, forge):
    for alg in ("none", "None", "NONE"):
        unsigned = f"{segment(forge.header(alg=alg))}.{segment(forge.claims())}."
        rejects("Bearer " + unsigned)


def test_none_algorithm_with_a_signature_is_rejected(rejects, forge):
    rejects("Bearer " + jws(forge.header(alg="none"), forge.claims(), lambda d: b"\0"))


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("pem", id="public-key-pem"),
        pytest.param("pem-whitespace", id="public-key-pem-mutated"),
        pytest.param("jwk", id="public-jwk-json"),
        pytest.param("kid", id="kid-as-secret"),
    ],
)
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_public_material_is_rejected(rejects, forge, secret, alg):
    material = {
        "pem": forge.public_pem(),
        "pem-whitespace": forge.public_pem().replace(b"\n", b"\r\n") + b"  \n",
        "jwk": forge.public_jwk_json(),
        "kid": forge.signer.kid.encode(),
    }[secret]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    token = jws(
        forge.header(alg=alg), forge.claims(), lambda d: hmac.new(material, d, digest).digest()
    )
    rejects("Bearer " + token)


@pytest.mark.parametrize("alg", ["ES384", "ES512", "PS256", "EdDSA", "es256", "", None, ["ES256"]])
def test_algorithm_outside_the_allow_list_is_rejected(rejects, forge, alg):
    rejects(
        "Bearer "
        + jws(forge.header(alg=alg), forge.claims(), lambda d: es256(forge.private_key, d))
    )


def test_missing_algorithm_is_rejected(rejects, forge):
    rejects(
        "Bearer "
        + jws(forge.header(alg=DROP), forge.claims(), lambda d: es256(forge.private_key, d))
    )


def test_rs256_header_with_our_ec_kid_is_rejected(rejects, forge):
    token = jws(forge.header(alg="RS256"), forge.claims(), lambda d: rs256(ATTACKER_RSA, d))
    rejects("Bearer " + token)


def test_rs256_header_with_our_ec_kid_and_our_ec_signature_is_rejected(rejects, forge):
    # The signature is genuine ES256 by our key; only the header's alg lies.
    rejects(
        "Bearer "
        + jws(forge.header(alg="RS256"), forge.claims(), lambda d: es256(forge.private_key, d))
    )


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param("no-such-key", id="unknown"),
        pytest.param("../../../../etc/passwd", id="path-traversal"),
        pytest.param("tessera/test/signing-keys", id="secret-name"),
        pytest.param("x' OR '1'='1", id="injection"),
        pytest.param("", id="empty"),
        pytest.param("k" * 200, id="too-long"),
        pytest.param(7, id="number"),
        pytest.param(None, id="null"),
        pytest.param(DROP, id="missing"),
    ],
)
def test_kid_that_is_not_one_of_our_keys_is_rejected(rejects, forge, kid):
    rejects(
        "Bearer "
        + jws(forge.header(kid=kid), forge.claims(), lambda d: es256(forge.private_key, d))
    )


def test_kid_differing_only_in_case_is_rejected(rejects, forge):
    kid = (
        forge.signer.kid.upper()
        if forge.signer.kid.upper() != forge.signer.kid
        else forge.signer.kid + "X"
    )
    rejects(
        "Bearer "
        + jws(forge.header(kid=kid), forge.claims(), lambda d: es256(forge.private_key, d))
    )


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"jwk": attacker_jwk()}, id="embedded-jwk"),
        pytest.param({"jku": "https://attacker.example/jwks.json"}, id="jku"),
        pytest.param({"x5u": "https://attacker.example/cert.pem"}, id="x5u"),
        pytest.param({"x5c": [base64.b64encode(b"attacker certificate").decode()]}, id="x5c"),
    ],
)
@pytest.mark.parametrize("kid", ["attacker", "ours"])
def test_keys_offered_by_the_header_are_never_used(rejects, forge, extra, kid):
    header = forge.header(kid=forge.signer.kid if kid == "ours" else "attacker", **extra)
    rejects("Bearer " + jws(header, forge.claims(), lambda d: es256(ATTACKER_EC, d)))


def test_header_key_parameters_are_ignored_on_a_token_we_signed(invoke, forge):
    header = forge.header(jku="https://attacker.example/jwks.json", jwk=attacker_jwk())
    assert allowed_routes(invoke("Bearer " + forge.token(header)))


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:unknown"], [], "exp"])
def test_crit_header_is_rejected(rejects, forge, crit):
    rejects("Bearer " + forge.token(forge.header(crit=crit, b64=False)))


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"b64": False}, id="b64-false"),
        pytest.param({"b64": True}, id="b64-true"),
        pytest.param({"zip": "DEF"}, id="zip"),
        pytest.param({"enc": "A256GCM"}, id="enc"),
    ],
)
def test_header_changing_how_the_token_is_read_is_rejected(rejects, forge, extra):
    # Signed by our key with valid claims: only the header parameter is wrong.
    rejects("Bearer " + forge.token(forge.header(**extra)))


@pytest.mark.parametrize("earlier", ["same", "other"])
@pytest.mark.parametrize("member", ["alg", "kid", "typ"])
def test_duplicate_header_members_are_rejected(rejects, forge, member, earlier):
    # The valid value comes last: a last-wins parser would see our own header.
    header = forge.header()
    other = {"alg": "none", "kid": "no-such-key", "typ": "JWT"}[member]
    first = header[member] if earlier == "same" else other
    members = [f'"{member}":{json.dumps(first)}']
    members += [f'"{name}":{json.dumps(value)}' for name, value in header.items()]
    signing_input = f"{b64(('{' + ','.join(members) + '}').encode())}.{segment(forge.claims())}"
    token = signing_input + "." + b64(es256(forge.private_key, signing_input.encode()))
    rejects("Bearer " + token)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_at_jwt_is_accepted_in_any_case(invoke, forge, typ):
    assert allowed_routes(invoke("Bearer " + forge.token(forge.header(typ=typ))))


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "at+jwt ", "application/jwt", "at+JWT+x", "", 1, DROP]
)
def test_typ_other_than_at_jwt_is_rejected(rejects, forge, typ):
    rejects("Bearer " + forge.token(forge.header(typ=typ)))


@pytest.mark.parametrize(
    "iss",
    [
        pytest.param("https://evil.example", id="other"),
        pytest.param(ISSUER[:-3], id="prefix-of-ours"),
        pytest.param(ISSUER[8:], id="substring-of-ours"),
        pytest.param(ISSUER + "/", id="trailing-slash"),
        pytest.param(ISSUER + ".evil.example", id="ours-as-prefix"),
        pytest.param(ISSUER.upper(), id="upper-case"),
        pytest.param([ISSUER], id="list"),
        pytest.param("", id="empty"),
    ],
)
def test_issuer_must_match_exactly(rejects, forge, iss):
    rejects("Bearer " + forge.token(iss=iss))


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param("https://other-api.example", id="other"),
        pytest.param(AUDIENCE[:-3], id="prefix-of-ours"),
        pytest.param(AUDIENCE + "/", id="trailing-slash"),
        pytest.param(["https://other-api.example"], id="list-without-ours"),
        pytest.param([], id="empty-list"),
        pytest.param({"aud": AUDIENCE}, id="object"),
    ],
)
def test_audience_must_contain_ours(rejects, forge, aud):
    rejects("Bearer " + forge.token(aud=aud))


def test_audience_list_containing_ours_is_accepted(invoke, forge):
    assert allowed_routes(invoke("Bearer " + forge.token(aud=["https://other.example", AUDIENCE])))


@pytest.mark.parametrize("claim", access_tokens.REQUIRED_CLAIMS)
def test_each_required_claim_is_required(rejects, forge, claim):
    rejects("Bearer " + forge.token(**{claim: DROP}))


@pytest.mark.parametrize("claim", ["sub", "client_id", "jti"])
def test_empty_identifier_claims_are_rejected(rejects, forge, claim):
    rejects("Bearer " + forge.token(**{claim: ""}))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["1800000900", 1_800_000_900.5, True, None, [1_800_000_900]])
def test_time_claims_must_be_integers(rejects, forge, claim, value):
    rejects("Bearer " + forge.token(**{claim: value}))


def test_null_nbf_is_rejected_not_read_as_absent(rejects, invoke, forge):
    assert allowed_routes(invoke("Bearer " + forge.token(nbf=DROP)))  # nbf is optional
    rejects("Bearer " + forge.token(nbf=None))


def test_expired_token_is_rejected(rejects, forge):
    leeway = settings().clock_leeway
    rejects(
        "Bearer " + forge.token(iat=forge.now - 1000, nbf=forge.now - 1000, exp=forge.now - leeway)
    )


def test_token_expired_within_the_leeway_is_still_accepted(invoke, forge):
    leeway = settings().clock_leeway
    token = forge.token(iat=forge.now - 1000, nbf=forge.now - 1000, exp=forge.now - leeway + 1)
    assert allowed_routes(invoke("Bearer " + token))


def test_not_yet_valid_token_is_rejected(rejects, forge):
    rejects("Bearer " + forge.token(nbf=forge.now + settings().clock_leeway + 1))


def test_token_issued_in_the_future_is_rejected(rejects, forge):
    rejects("Bearer " + forge.token(iat=forge.now + settings().clock_leeway + 1))


def test_tampered_payload_is_rejected(rejects, forge):
    header, _, signature = forge.token(scope="people:read").split(".")
    rejects(f"Bearer {header}.{segment(forge.claims(scope=ALL_SCOPES))}.{signature}")


def test_tampered_signature_is_rejected(rejects, forge):
    header, payload, signature = forge.token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    rejects(f"Bearer {header}.{payload}.{b64(bytes(raw))}")


def test_der_encoded_ecdsa_signature_is_rejected(rejects, forge):
    token = jws(
        forge.header(),
        forge.claims(),
        lambda d: forge.private_key.sign(d, ec.ECDSA(hashes.SHA256())),
    )
    rejects("Bearer " + token)


def test_signature_by_another_ec_key_is_rejected(rejects, forge):
    rejects("Bearer " + jws(forge.header(), forge.claims(), lambda d: es256(ATTACKER_EC, d)))


def test_duplicate_claims_are_rejected(rejects, forge):
    claims = json.dumps(forge.claims(), separators=(",", ":"))[:-1] + f',"iss":"{ISSUER}"}}'
    rejects(
        "Bearer " + jws(forge.header(), b64(claims.encode()), lambda d: es256(forge.private_key, d))
    )


def test_sid_that_is_not_a_string_is_rejected(rejects, forge):
    rejects("Bearer " + forge.token(sid=12345))


def test_oversized_token_is_rejected_even_when_correctly_signed(rejects, forge):
    token = forge.token(padding="x" * access_tokens.MAX_TOKEN_LENGTH)
    assert len(token) > access_tokens.MAX_TOKEN_LENGTH
    rejects("Bearer " + token)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: ".".join(t.split(".")[:2]), id="two-segments"),
        pytest.param(lambda t: t + ".AAAA", id="four-segments"),
        pytest.param(lambda t: t + ".AAAA.BBBB", id="five-segments-jwe"),
        pytest.param(lambda t: "..", id="empty-segments"),
        pytest.param(
            lambda t: json.dumps(
                {
                    "payload": t.split(".")[1],
                    "protected": t.split(".")[0],
                    "signature": t.split(".")[2],
                }
            ),
            id="json-serialization",
        ),
        pytest.param(lambda t: t.replace(".", ". ", 1), id="whitespace-inside"),
        pytest.param(lambda t: t[:20] + "!" + t[21:], id="non-base64url"),
        pytest.param(lambda t: t.replace("-", "+").replace("_", "/") + "+/", id="standard-base64"),
        pytest.param(lambda t: t.split(".")[0] + "==." + ".".join(t.split(".")[1:]), id="padded"),
        pytest.param(
            lambda t: segment([1]) + "." + ".".join(t.split(".")[1:]), id="header-not-object"
        ),
        pytest.param(
            lambda t: b64(b"\xff\xfe") + "." + ".".join(t.split(".")[1:]), id="header-not-utf8"
        ),
    ],
)
def test_malformed_token_is_rejected(rejects, forge, make):
    rejects("Bearer " + make(forge.token()))


def test_payload_that_is_not_an_object_is_rejected(rejects, forge):
    rejects(
        "Bearer "
        + jws(
            forge.header(), segment(["not", "an", "object"]), lambda d: es256(forge.private_key, d)
        )
    )
