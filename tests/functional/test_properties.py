"""Property-based tests (hypothesis): for ANY input the parsers and the token validator answer
with a value or an OAuth error / ``InvalidToken`` (never another exception, i.e. never a 500), and
no alteration of a valid token is ever accepted. Bounded so the suite stays fast.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jwt.utils import base64url_decode, base64url_encode

from chalicelib.core.errors import OAuthError
from chalicelib.core.forms import OAuthRequest, parse_basic, parse_form
from chalicelib.tokens import access_tokens, key_objects

BOUNDED = settings(max_examples=200, deadline=None)
ISSUER = "https://auth.test.example"
AUDIENCE = "https://api.test.example"
NOW = 1_800_000_000

FORM = "application/x-www-form-urlencoded"
content_types = st.one_of(
    st.just(FORM),
    st.just(FORM + "; charset=utf-8"),
    st.just("Application/X-WWW-Form-Urlencoded"),
    st.none(),
    st.text(max_size=40),
)
# Bodies: raw bytes, and forms built from (possibly repeated, empty, odd) names and values.
pairs = st.lists(
    st.tuples(
        st.sampled_from(["grant_type", "scope", "client_id", "username", "x", ""])
        | st.text(max_size=8),
        st.text(max_size=12),
    ),
    max_size=6,
)
bodies = st.one_of(
    st.binary(max_size=300),
    pairs.map(lambda ps: urlencode(ps).encode()),
    st.text(alphabet="%=&+abc0123456789ABCDEF\u00e9", max_size=60).map(str.encode),
)


def _outcome(parse: Any, *args: Any) -> Any:
    """The parser's value, or the OAuthError it raised; any other exception fails the test."""
    try:
        return parse(*args)
    except OAuthError as err:
        return err


@BOUNDED
@given(content_types, bodies)
def test_form_parser_answers_a_form_or_an_oauth_error(content_type, body):
    outcome = _outcome(parse_form, content_type, body)
    if isinstance(outcome, OAuthError):
        assert (outcome.error, outcome.status) == ("invalid_request", 400)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in outcome.items())


# Forms in which some name certainly appears twice (generated so, not filtered: filtering random
# forms for a repeat rejects most of them and trips hypothesis's health check on some seeds).
forms_with_a_repeat = st.tuples(
    pairs,
    st.sampled_from(["grant_type", "scope", "client_id", "x", ""]) | st.text(max_size=8),
    st.text(max_size=12),
    st.text(max_size=12),
).flatmap(lambda t: st.permutations([*t[0], (t[1], t[2]), (t[1], t[3])]))


@BOUNDED
@given(forms_with_a_repeat)
def test_a_repeated_parameter_is_never_accepted(ps):
    with pytest.raises(OAuthError):
        parse_form(FORM, urlencode(ps).encode())


basic_values = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=60).map(lambda b: "Basic " + __import__("base64").b64encode(b).decode()),
    st.tuples(st.text(max_size=20), st.text(max_size=20)).map(
        lambda t: "Basic " + __import__("base64").b64encode(f"{t[0]}:{t[1]}".encode()).decode()
    ),
)


@BOUNDED
@given(basic_values)
def test_basic_auth_parser_answers_credentials_or_invalid_client(header):
    outcome = _outcome(parse_basic, header)
    if isinstance(outcome, OAuthError):
        assert (outcome.error, outcome.status) == ("invalid_client", 401)
    else:
        assert outcome[0]
        assert isinstance(outcome[1], str)


@BOUNDED
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5), bodies)
def test_oauth_request_form_answers_a_form_or_an_oauth_error(headers, body):
    _outcome(OAuthRequest("POST", headers, body).form)


# --- the token validator ----------------------------------------------------------------


def _keys() -> tuple[key_objects.SigningKey, Any]:
    signer = key_objects.load_signing_key(key_objects.generate_private_jwk("k1", "ES256"))
    verifier = signer.verifying_key()
    return signer, {"k1": verifier}.get


SIGNER, KEY_FOR = _keys()
TOKEN, _ = access_tokens.issue(
    SIGNER,
    issuer=ISSUER,
    audience=AUDIENCE,
    subject="u_1",
    client_id="c1",
    scope="people:read",
    now=NOW,
    lifetime=900,
    family_id="f1",
)


def validate(token: str) -> access_tokens.AccessTokenClaims:
    return access_tokens.validate(
        token, KEY_FOR, issuer=ISSUER, audience=AUDIENCE, now=NOW + 1, leeway=30
    )


def test_size_cap_comes_before_any_decoding():
    # Over the cap and not even base64url: the size check answers first.
    with pytest.raises(access_tokens.InvalidToken, match="too large"):
        validate("!" * (access_tokens.MAX_TOKEN_LENGTH + 1))


def test_the_unaltered_token_is_valid():
    assert validate(TOKEN).sub == "u_1"


@BOUNDED
@given(st.text(max_size=600))
def test_validator_rejects_arbitrary_text_with_invalid_token_only(text):
    with pytest.raises(access_tokens.InvalidToken):
        validate(text)


@BOUNDED
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_no_altered_byte_of_a_token_is_accepted(position, value):
    raw = bytearray(TOKEN.encode("ascii"))
    i = position % len(raw)
    assume(raw[i] != value)
    raw[i] = value
    altered = raw.decode("latin-1")
    with pytest.raises(access_tokens.InvalidToken):
        validate(altered)


@BOUNDED
@given(st.integers(min_value=0), st.text(min_size=1, max_size=3))
def test_no_insertion_into_a_token_is_accepted(position, extra):
    i = position % (len(TOKEN) + 1)
    with pytest.raises(access_tokens.InvalidToken):
        validate(TOKEN[:i] + extra + TOKEN[i:])


@BOUNDED
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=8))
def test_no_deletion_from_a_token_is_accepted(position, length):
    i = position % len(TOKEN)
    with pytest.raises(access_tokens.InvalidToken):
        validate(TOKEN[:i] + TOKEN[i + length :])


@BOUNDED
@given(
    st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "b64"]),
        st.one_of(
            st.text(max_size=10),
            st.integers(),
            st.none(),
            st.booleans(),
            st.lists(st.text(max_size=3), max_size=2),
        ),
        max_size=5,
    )
)
def test_a_token_with_a_forged_header_is_rejected(header_changes):
    """Any header change (alg none/HS256, another kid, crit, embedded keys) with the original
    payload and signature is rejected: the signature covers the header."""
    import json

    head, payload, signature = TOKEN.split(".")
    header = json.loads(base64url_decode(head))
    new_header = {**header, **header_changes}
    assume(new_header != header)
    forged_head = base64url_encode(json.dumps(new_header).encode()).decode()
    with pytest.raises(access_tokens.InvalidToken):
        validate(f"{forged_head}.{payload}.{signature}")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content_types, bodies, st.sampled_from([None, "Basic Zm9vOmJhcg==", "Bearer x", "Basic"]))
def test_token_endpoint_never_answers_500(app_client, content_type, body, authorization):
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if authorization is not None:
        headers["Authorization"] = authorization
    resp = app_client.http.post("/oauth2/token", headers=headers, body=body)
    assert resp.status_code in (400, 401)
    assert resp.headers["Content-Type"] == "application/json"
