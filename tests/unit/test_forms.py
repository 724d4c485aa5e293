"""Strict request parsing (RFC 6749 §3.2 form bodies, §2.3.1 HTTP Basic client credentials).

These are the parser's own rules; tests/functional/test_token_endpoint.py checks the same rules
through the
HTTP endpoint.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest

from chalicelib.core.errors import InvalidClient, InvalidRequest
from chalicelib.core.forms import MAX_BODY, OAuthRequest, header, parse_basic, parse_form

FORM = "application/x-www-form-urlencoded"


def basic_header(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return "Basic " + base64.b64encode(data).decode()


# --- content type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded;charset=utf-8",
    ],
)
def test_form_content_type_with_or_without_charset_is_accepted(content_type: str) -> None:
    assert parse_form(content_type, b"grant_type=client_credentials") == {
        "grant_type": "client_credentials"
    }


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded-extra",
    ],
)
def test_other_content_types_are_invalid_request(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest):
        parse_form(content_type, b"grant_type=client_credentials")


# --- parameters ----------------------------------------------------------------------------


def test_repeated_parameter_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, b"scope=a&grant_type=password&scope=b")


def test_repeated_parameter_is_invalid_request_even_when_one_copy_is_empty() -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, b"scope=&scope=a")


def test_parameter_repeated_through_a_different_encoding_is_still_repeated() -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, b"scope=a&%73cope=b")


def test_empty_value_counts_as_absent() -> None:
    assert parse_form(FORM, b"grant_type=client_credentials&scope=&client_id") == {
        "grant_type": "client_credentials"
    }


def test_values_are_percent_and_plus_decoded() -> None:
    body = urlencode({"username": "Zoë O'Brien", "password": "a+b&c=d %"}).encode()
    assert parse_form(FORM, body) == {"username": "Zoë O'Brien", "password": "a+b&c=d %"}


def test_empty_body_is_an_empty_form() -> None:
    assert parse_form(FORM, b"") == {}
    assert parse_form(FORM, None) == {}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"scope=%zz", id="non-hex-escape"),
        pytest.param(b"scope=%4", id="truncated-escape"),
        pytest.param(b"scope=100%", id="bare-percent"),
        pytest.param(b"sc%g0pe=a", id="bad-escape-in-name"),
    ],
)
def test_malformed_percent_encoding_is_invalid_request(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"scope=\xff\xfe", id="raw-bytes"),
        pytest.param(b"scope=%FF%FE", id="percent-encoded-bytes"),
        pytest.param(b"scope=%C3", id="truncated-sequence"),
    ],
)
def test_invalid_utf8_is_invalid_request(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, raw)


def test_body_over_the_cap_is_invalid_request() -> None:
    body = b"a=" + b"x" * MAX_BODY
    with pytest.raises(InvalidRequest):
        parse_form(FORM, body)


def test_error_descriptions_do_not_echo_the_input() -> None:
    marker = 'scope"\n<é>'
    with pytest.raises(InvalidRequest) as caught:
        parse_form(FORM, urlencode([(marker, "1"), (marker, "2")]).encode())
    assert marker not in str(caught.value.description)
    assert "scope" not in str(caught.value.description)


# --- query string --------------------------------------------------------------------------


def test_form_refuses_parameters_in_the_query_string() -> None:
    request = OAuthRequest(
        "POST",
        {"Content-Type": FORM},
        b"grant_type=client_credentials",
        query={"client_secret": "s"},
    )
    with pytest.raises(InvalidRequest):
        request.form()


def test_headers_are_looked_up_case_insensitively() -> None:
    request = OAuthRequest("post", {"Content-TYPE": FORM}, b"a=b")
    assert request.method == "POST"
    assert request.form() == {"a": "b"}
    assert header({"X-Thing": "1"}, "x-thing") == "1"
    assert header({}, "x-thing") is None


# --- HTTP Basic (§2.3.1) -------------------------------------------------------------------


def test_basic_credentials_are_form_urldecoded() -> None:
    client_id, secret = "app:1/é", "s3cr+t %:&=ü"
    encoded = quote(client_id, safe="") + ":" + quote(secret, safe="")
    assert parse_basic(basic_header(encoded)) == (client_id, secret)


def test_basic_plus_in_credentials_means_space() -> None:
    assert parse_basic(basic_header("my+app:a+b")) == ("my app", "a b")


def test_basic_scheme_name_is_case_insensitive() -> None:
    assert parse_basic("bAsIc " + base64.b64encode(b"id:secret").decode()) == ("id", "secret")


def test_basic_secret_may_be_empty() -> None:
    assert parse_basic(basic_header("id:")) == ("id", "")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Bearer abc", id="other-scheme"),
        pytest.param("Basic", id="no-credentials"),
        pytest.param("Basic !!!!", id="not-base64"),
        pytest.param("Basic aWQ6c2VjcmV0MQ", id="missing-padding"),
        pytest.param(basic_header("no-colon"), id="no-colon"),
        pytest.param(basic_header(":secret"), id="empty-id"),
        pytest.param(basic_header(b"\xff\xfe:secret"), id="not-utf8"),
        pytest.param(basic_header("%FF:secret"), id="encoded-invalid-utf8"),
        pytest.param(basic_header("id%zz:secret"), id="bad-percent-encoding"),
    ],
)
def test_malformed_basic_header_is_invalid_client(value: str) -> None:
    with pytest.raises(InvalidClient):
        parse_basic(value)
