"""The admin command's operations on clients and users (create, check, profile): what
``python -m chalicelib.admin client/user ...`` runs, also used by the tests and the local stack's
seeding. ``AdminError`` is the one-line error every admin area raises."""

from __future__ import annotations

import time

from chalicelib.core.records import (
    Client,
    InvalidUsername,
    User,
    hash_secret,
    normalize_username,
)
from chalicelib.core.scopes import parse_scope
from chalicelib.store.clients import (
    GRANT_TYPES,
    ClientExists,
    ClientStore,
    new_client_id,
    new_client_secret,
)
from chalicelib.store.users import UserExists, UserStore, new_user_id
from chalicelib.tokens.passwords import hash_password


class AdminError(Exception):
    """A one-line error for the operator."""


# --- operations ----------------------------------


def create_client(
    store: ClientStore,
    *,
    name: str,
    grant_types: list[str],
    scopes: list[str],
    public: bool = False,
    introspect: bool = False,
    first_party: bool = False,
    redirect_uris: list[str] | None = None,
    now: int | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    subject_type: str = "public",
    sector: str | None = None,
) -> dict[str, object]:
    from chalicelib.oauth import oidc

    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise AdminError(f"unknown grant type: {unknown[0]} (choose from {', '.join(GRANT_TYPES)})")
    if not grant_types:
        raise AdminError("at least one grant type is required")
    if public and ("client_credentials" in grant_types or "password" in grant_types):
        raise AdminError("client_credentials and password need a confidential client")
    if public and introspect:
        raise AdminError("a public client cannot introspect tokens")
    if scopes:
        try:
            parse_scope(" ".join(scopes))
        except Exception as exc:
            raise AdminError("malformed scope") from exc
    for uri in redirect_uris or ():
        check_redirect_uri(uri)
    if "authorization_code" in grant_types and not redirect_uris:
        raise AdminError("authorization_code needs at least one --redirect-uri")
    for uri in post_logout_redirect_uris or ():
        check_redirect_uri(uri)
    if subject_type not in oidc.SUBJECT_TYPES:
        raise AdminError(f"subject type must be one of {', '.join(oidc.SUBJECT_TYPES)}")
    if sector is not None and (subject_type != oidc.PAIRWISE or not sector.strip()):
        raise AdminError("--sector goes with --subject-type pairwise")
    client_id = new_client_id()
    if subject_type == oidc.PAIRWISE:
        sector = sector or oidc.default_sector(client_id, redirect_uris or [])
    secret = None if public else new_client_secret()
    client = Client(
        client_id=client_id,
        name=name,
        grant_types=tuple(dict.fromkeys(grant_types)),
        scopes=tuple(dict.fromkeys(scopes)),
        public=public,
        secret_hash=hash_secret(secret) if secret else None,
        introspect=introspect,
        first_party=first_party or "password" in grant_types,
        redirect_uris=tuple(redirect_uris or ()),
        created_at=int(now if now is not None else time.time()),
        post_logout_redirect_uris=tuple(dict.fromkeys(post_logout_redirect_uris or ())),
        subject_type=subject_type,
        sector=sector or "",
    )
    try:
        store.create(client)
    except ClientExists as exc:  # 128-bit ids: practically impossible, but never overwrite
        raise AdminError("client id collision, try again") from exc
    return {**client.public_view(), "client_secret": secret}


def check_redirect_uri(uri: str) -> None:
    """RFC 6749 §3.1.2 and RFC 8252: absolute, no fragment; https, or http only on loopback,
    or a private-use scheme (``com.example.app:/cb``) for native apps. Written the way urllib
    writes it back, so the app gets its own URI back with the code added
    (chalicelib.web.authorize)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri or any(c.isspace() for c in uri):
        raise AdminError(f"invalid redirect URI: {uri!r} (absolute, without fragment)")
    if urlunsplit(parts) != uri.removesuffix("?"):
        raise AdminError(f"write the redirect URI {uri!r} as {urlunsplit(parts)!r}")
    if parts.scheme == "http":
        if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise AdminError("http redirect URIs are allowed only on loopback; use https")
    elif parts.scheme == "https":
        if not parts.hostname:
            raise AdminError(f"invalid redirect URI: {uri!r}")
    elif "." not in parts.scheme:
        raise AdminError("custom-scheme redirect URIs must be reverse-domain (com.example.app:/cb)")


def create_user(
    store: UserStore,
    username: str,
    password: str,
    *,
    now: int | None = None,
    email: str | None = None,
    email_verified: bool = False,
    name: str | None = None,
) -> dict[str, object]:
    try:
        username = normalize_username(username)
    except InvalidUsername as exc:
        raise AdminError(str(exc)) from exc
    if len(password) < 8:
        raise AdminError("password must be at least 8 characters")
    check_profile(email, name)
    user = User(
        username=username,
        user_id=new_user_id(),
        password_hash=hash_password(password),
        created_at=int(now if now is not None else time.time()),
        email=email,
        email_verified=email_verified and email is not None,
        name=name,
    )
    try:
        store.create(user)
    except UserExists as exc:
        raise AdminError(f"user already exists: {username}") from exc
    return {"username": user.username, "user_id": user.user_id, "created_at": user.created_at}


MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3 (a path's limit)
MAX_NAME = 200


def check_profile(email: str | None, name: str | None) -> None:
    """The profile claims (OpenID Connect Core §5.1): an address with one @ and no spaces,
    a name of printable characters; both within a length limit."""
    if email is not None:
        local, at, domain = email.partition("@")
        if (
            not (local and at and domain)
            or "@" in domain
            or len(email) > MAX_EMAIL
            or not email.isprintable()
            or any(c.isspace() for c in email)
        ):
            raise AdminError(f"invalid email address: {email!r}")
    if name is not None and (not name.strip() or len(name) > MAX_NAME or not name.isprintable()):
        raise AdminError(f"a name is 1-{MAX_NAME} printable characters")


def set_profile(
    store: UserStore,
    username: str,
    *,
    email: str | None,
    email_verified: bool,
    name: str | None,
) -> dict[str, object]:
    """Replace a user's profile claims (what the ``profile`` and ``email`` scopes release)."""
    try:
        username = normalize_username(username)
    except InvalidUsername as exc:
        raise AdminError(str(exc)) from exc
    check_profile(email, name)
    verified = email_verified and email is not None
    if not store.set_profile(username, email=email, email_verified=verified, name=name):
        raise AdminError(f"no such user: {username}")
    return {"username": username, "email": email, "email_verified": verified, "name": name}
