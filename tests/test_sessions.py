"""Signed session cookies, CSRF tokens and the signed request carrier."""

from chalicelib.sessions import SessionSigner, cookie, read_cookie

NOW = 1_800_000_000


def signer(*keys: tuple[str, bytes]) -> SessionSigner:
    return SessionSigner(list(keys) or [("k1", b"a" * 32)])


def test_issued_session_reads_back_until_it_expires():
    s = signer()
    value = s.issue("u_1", "alice", NOW, ttl=60)
    session = s.read(value, NOW + 59)
    assert session is not None
    assert (session.user_id, session.username) == ("u_1", "alice")
    assert s.read(value, NOW + 60) is None


def test_tampered_session_is_rejected():
    s = signer()
    payload, mac = s.issue("u_1", "alice", NOW).split(".")
    forged = signer(("k1", b"b" * 32)).issue("u_2", "mallory", NOW).split(".")[0]
    assert s.read(forged + "." + mac, NOW) is None
    assert s.read(payload + "." + mac[:-2] + "AA", NOW) is None
    assert s.read("garbage", NOW) is None
    assert s.read("a.b.c", NOW) is None


def test_session_signed_with_a_previous_key_still_reads_after_rotation():
    old = signer(("k1", b"a" * 32))
    value = old.issue("u_1", "alice", NOW)
    rotated = signer(("k2", b"c" * 32), ("k1", b"a" * 32))
    assert rotated.read(value, NOW) is not None
    assert signer(("k2", b"c" * 32)).read(value, NOW) is None


def test_csrf_token_is_bound_to_its_nonce():
    s = signer()
    token = s.csrf_token("nonce-1")
    assert s.check_csrf("nonce-1", token)
    assert not s.check_csrf("nonce-2", token)
    assert not s.check_csrf(None, token)
    assert not s.check_csrf("nonce-1", None)


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
