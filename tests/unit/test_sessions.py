"""Signed session cookies, CSRF tokens and the signed request carrier."""

import pytest

from chalicelib.oauth.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionSigner,
    cookie,
    csrf_nonce,
    new_nonce,
    page_cookies,
    read_cookie,
)

NOW = 1_800_000_000


def signer(*keys: tuple[str, bytes]) -> SessionSigner:
    return SessionSigner(list(keys) or [("k1", b"a" * 32)])


def test_issued_session_reads_back_until_it_expires():
    s = signer()
    value, issued = s.issue("u_1", "alice", NOW, ttl=60)
    session = s.read(value, NOW + 59)
    assert session == issued
    assert (session.user_id, session.username) == ("u_1", "alice")
    assert s.read(value, NOW + 60) is None


def test_tampered_session_is_rejected():
    s = signer()
    payload, kid, mac = s.issue("u_1", "alice", NOW)[0].split(".")
    forged = signer(("k1", b"b" * 32)).issue("u_2", "mallory", NOW)[0].split(".")[0]
    assert s.read(f"{forged}.{kid}.{mac}", NOW) is None
    assert s.read(f"{payload}.{kid}.{mac[:-2]}AA", NOW) is None
    assert s.read(f"{payload}.k2.{mac}", NOW) is None
    assert s.read("garbage", NOW) is None
    assert s.read("a.b.c", NOW) is None


def test_session_signed_with_a_previous_key_still_reads_after_rotation():
    old = signer(("k1", b"a" * 32))
    value, _ = old.issue("u_1", "alice", NOW)
    rotated = signer(("k2", b"c" * 32), ("k1", b"a" * 32))
    assert rotated.read(value, NOW) is not None
    assert signer(("k2", b"c" * 32)).read(value, NOW) is None


def test_csrf_token_is_bound_to_its_nonce():
    s = signer()
    token = s.csrf_token("nonce-1", None)
    assert s.check_csrf("nonce-1", token, None)
    assert not s.check_csrf("nonce-2", token, None)
    assert not s.check_csrf(None, token, None)
    assert not s.check_csrf("nonce-1", None, None)


def test_csrf_token_is_bound_to_its_session():
    s = signer()
    _, mine = s.issue("u_1", "alice", NOW)
    _, other = s.issue("u_1", "alice", NOW)  # the same user, signed in again: another session
    token = s.csrf_token("nonce-1", mine)
    assert s.check_csrf("nonce-1", token, mine)
    assert not s.check_csrf("nonce-1", token, other)
    assert not s.check_csrf("nonce-1", token, None)
    assert not s.check_csrf("nonce-1", s.csrf_token("nonce-1", None), mine)


def test_signed_blob_round_trips_and_detects_changes():
    s = signer()
    blob = s.sign_blob('{"client_id": "c1"}')
    assert s.open_blob(blob) == '{"client_id": "c1"}'
    _encoded, kid, mac = blob.split(".")
    other = s.sign_blob('{"client_id": "c2"}').split(".")[0]
    assert s.open_blob(f"{other}.{kid}.{mac}") is None
    assert s.open_blob(None) is None


def test_cookie_attributes_and_parsing():
    c = cookie("tessera_session", "v", secure=True, max_age=900)
    assert "HttpOnly" in c
    assert "SameSite=Lax" in c
    assert "Secure" in c
    assert "Secure" not in cookie("tessera_session", "v", secure=False, max_age=900)
    assert read_cookie("a=1; tessera_session=xyz; b=2", "tessera_session") == "xyz"
    assert read_cookie(None, "tessera_session") is None


def test_cookies_use_host_prefix_on_https():
    """``__Host-`` (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain, so no sibling subdomain can
    set or shadow the session or the CSRF nonce."""
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        attrs = cookie(name, "v", secure=True, max_age=900).split("; ")
        assert attrs[0] == f"__Host-{name}=v"
        assert {"Secure", "Path=/", "HttpOnly", "SameSite=Lax"} <= set(attrs)
        assert not any(a.lower().startswith("domain") for a in attrs)
        assert cookie(name, "v", secure=False, max_age=900).startswith(f"{name}=v;")


def test_https_pages_read_only_the_host_prefixed_cookies():
    nonce = new_nonce()
    tossed = f"tessera_session=planted; tessera_csrf={new_nonce()}"
    header = f"{tossed}; __Host-tessera_session=real; __Host-tessera_csrf={nonce}"
    assert page_cookies(header, secure=True) == {SESSION_COOKIE: "real", CSRF_COOKIE: nonce}
    assert page_cookies(tossed, secure=True) == {SESSION_COOKIE: None, CSRF_COOKIE: None}
    plain = page_cookies(f"tessera_session=s; tessera_csrf={nonce}", secure=False)
    assert plain == {SESSION_COOKIE: "s", CSRF_COOKIE: nonce}


@pytest.mark.parametrize("nonce", ["", "short", "é" * 32, "a|b" + "c" * 29, "x" * 33, "%ff" * 11])
def test_csrf_nonce_this_server_did_not_make_counts_as_absent(nonce):
    cookies = page_cookies(f"__Host-tessera_csrf={nonce}", secure=True)
    assert cookies[CSRF_COOKIE] is None
    fresh, set_cookie = csrf_nonce(cookies, secure=True)
    assert set_cookie == [cookie(CSRF_COOKIE, fresh, secure=True, max_age=3600)]


def test_csrf_nonce_is_kept_until_renewed():
    nonce = new_nonce()
    assert csrf_nonce({CSRF_COOKIE: nonce}, secure=True) == (nonce, [])
    renewed, set_cookie = csrf_nonce({CSRF_COOKIE: nonce}, secure=True, renew=True)
    assert renewed != nonce
    assert set_cookie[0].startswith(f"__Host-tessera_csrf={renewed};")


@pytest.mark.parametrize("bad", ["é", "\u2028" * 43, "\x00", "😀" * 11, "\udc80"])
def test_non_ascii_csrf_token_or_signature_is_refused_not_raised(bad):
    """hmac.compare_digest raises TypeError on a non-ASCII str: every check must answer False."""
    s = signer()
    _, session = s.issue("u_1", "alice", NOW)
    assert s.check_csrf("nonce-1", bad, None) is False
    assert s.check_csrf("nonce-1", bad, session) is False
    assert s.check_csrf(bad, s.csrf_token("nonce-1", None), None) is False
    encoded, kid, _ = s.sign_blob("{}").split(".")
    assert s.open_blob(f"{encoded}.{kid}.{bad}") is None
    assert s.open_blob(f"{bad}.{kid}.{bad}") is None
    payload, kid, _ = s.issue("u_1", "alice", NOW)[0].split(".")
    assert s.read(f"{payload}.{kid}.{bad}", NOW) is None
    assert s.read(f"{bad}.{kid}.{bad}", NOW) is None
    assert s.read(f"{payload}.{bad}.x", NOW) is None
