"""Wiring: builds each service once per container, lazily, from settings and AWS clients.

Nothing here runs at import. Each Lambda pays only for what it touches: the authorizer builds the
verifying key ring, the cached API rules and, where enabled, the revocation check, nothing else.
Stores get the container's botocore clients from ``chalicelib.store.aws``. Tests call ``reset()``
between cases (and may swap the clock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from chalicelib.core.clock import SYSTEM_CLOCK, Clock
from chalicelib.core.config import settings
from chalicelib.store import aws

if TYPE_CHECKING:  # for the annotations only: each builder imports its class when first called
    from chalicelib.oauth.introspection import IntrospectionEndpoint
    from chalicelib.oauth.login_guard import LoginGuard
    from chalicelib.oauth.oidc import IdTokens, Subjects
    from chalicelib.oauth.oidc_request import SessionChecks
    from chalicelib.oauth.refresh_tokens import RefreshTokens
    from chalicelib.oauth.revocation import RevocationEndpoint
    from chalicelib.oauth.sessions import SessionSigner
    from chalicelib.oauth.token_endpoint import TokenEndpoint
    from chalicelib.oauth.userinfo import UserinfoEndpoint
    from chalicelib.store.api_rules_store import CachedRules, RulesStore
    from chalicelib.store.auth_codes import CodeStore
    from chalicelib.store.clients import CachedClients, ClientStore
    from chalicelib.store.demo_store import DemoStore
    from chalicelib.store.grant_store import GrantStore
    from chalicelib.store.secret_store import SecretStore
    from chalicelib.store.users import UserStore
    from chalicelib.tokens.keys import CachedSecret, SigningKeyRing, VerifyingKeyRing
    from chalicelib.tokens.peppers import PepperRing
    from chalicelib.web.account import AccountPages
    from chalicelib.web.authorize import AuthorizationEndpoint
    from chalicelib.web.authorizer import Authorizer
    from chalicelib.web.logout import LogoutEndpoint

_lock = threading.RLock()
_built: dict[str, object] = {}
_clock: Clock = SYSTEM_CLOCK


def clock() -> Clock:
    return _clock


def set_clock(new: Clock) -> None:
    global _clock
    _clock = new
    reset()


def reset() -> None:
    """Forget every built service and cached client (tests; the local stack on restart)."""
    with _lock:
        _built.clear()
    settings.cache_clear()
    aws.reset()


def forget_built() -> None:
    """Drop every built service and its caches (key sets, rules, client records), keeping the
    settings and the AWS clients (chalicelib.web.snapstart, after a restore)."""
    with _lock:
        _built.clear()


def _once[T](name: str, build: Callable[[], T]) -> T:
    found = _built.get(name)
    if found is None:
        with _lock:
            found = _built.get(name)
            if found is None:
                found = _built[name] = build()
    return cast(T, found)  # stored under its builder's name: always that builder's type


def secret_store() -> SecretStore:
    from chalicelib.store.secret_store import SecretStore

    return _once("secret_store", lambda: SecretStore(aws.client("secretsmanager")))


def client_store() -> ClientStore:
    from chalicelib.store.clients import ClientStore

    return _once("client_store", lambda: ClientStore(aws.client("dynamodb"), settings().table_name))


def cached_clients() -> CachedClients:
    from chalicelib.store.clients import CachedClients

    return _once(
        "cached_clients",
        lambda: CachedClients(client_store(), _clock, settings().client_cache_ttl),
    )


def user_store() -> UserStore:
    from chalicelib.store.users import UserStore

    return _once("user_store", lambda: UserStore(aws.client("dynamodb"), settings().table_name))


def _cached_secret(secret_id: str) -> CachedSecret:
    from chalicelib.tokens.keys import CachedSecret

    s = settings()
    return CachedSecret(secret_store().fetcher(secret_id), _clock, s.key_cache_ttl, s.key_stale_max)


def signing_keys() -> SigningKeyRing:
    from chalicelib.tokens.keys import SigningKeyRing

    return _once(
        "signing_keys", lambda: SigningKeyRing(_cached_secret(settings().signing_keys_secret))
    )


def verifying_keys() -> VerifyingKeyRing:
    from chalicelib.store.secret_store import SecretStore
    from chalicelib.tokens.keys import CachedSecret, VerifyingKeyRing

    def build() -> VerifyingKeyRing:
        s = settings()
        public = SecretStore(aws.client("secretsmanager")).fetcher(s.public_keys_secret)
        return VerifyingKeyRing(CachedSecret(public, _clock, s.key_cache_ttl, s.key_stale_max))

    return _once("verifying_keys", build)


def api_rules_store() -> RulesStore:
    """Rule sets of the APIs that attach the authorizer (chalicelib.store.api_rules_store)."""
    from chalicelib.store.api_rules_store import RulesStore

    return _once(
        "api_rules_store", lambda: RulesStore(aws.client("dynamodb"), settings().table_name)
    )


def api_rules() -> CachedRules:
    """The authorizer's cached view of every rule set: one Query per cold container, then one
    per ``rules_cache_ttl``."""
    from chalicelib.store.api_rules_store import CachedRules

    s = settings()
    return _once(
        "api_rules",
        lambda: CachedRules(api_rules_store(), _clock, s.rules_cache_ttl, s.key_stale_max),
    )


def authorizer() -> Authorizer:
    """The API Gateway authorizer: public keys, the APIs' rules, and the revocation read where
    enabled."""
    from chalicelib.web.authorizer import Authorizer

    def build() -> Authorizer:
        s = settings()
        return Authorizer(
            key_for=verifying_keys().verifier,
            issuer=s.issuer,
            audience=s.audience,
            leeway=s.clock_leeway,
            clock=_clock,
            rules=api_rules(),
            # GrantStore.is_revoked: jti deny-list + family, one BatchGetItem per cache miss.
            revocation=grant_store() if s.authorizer_checks_revocation else None,
        )

    return _once("authorizer", build)


def demo_store() -> DemoStore:
    from chalicelib.store.demo_store import DemoStore

    return _once(
        "demo_store", lambda: DemoStore(aws.client("dynamodb"), settings().demo_table_name)
    )


def token_endpoint() -> TokenEndpoint:
    from chalicelib.oauth.token_endpoint import TokenEndpoint

    return _once(
        "token_endpoint",
        lambda: TokenEndpoint(
            settings=settings(),
            clock=_clock,
            clients=cached_clients(),
            users=user_store(),
            keys=signing_keys(),
            guard=login_guard(),
            refresh=refresh_grants() if settings().pepper_secret else None,
            codes=code_store() if settings().pepper_secret else None,
            id_tokens=id_tokens() if settings().pepper_secret else None,
        ),
    )


# --- OpenID Connect ------------------------------------------------------------------------


def subjects() -> Subjects:
    """The ``sub`` each client sees (chalicelib.oauth.oidc: public, or pairwise per sector)."""
    from chalicelib.oauth.oidc import Subjects
    from chalicelib.store.sector_salts import SectorSalts

    return _once(
        "subjects",
        lambda: Subjects(SectorSalts(aws.client("dynamodb"), settings().table_name)),
    )


def id_tokens() -> IdTokens:
    from chalicelib.oauth.oidc import IdTokens

    s = settings()
    return _once(
        "id_tokens",
        lambda: IdTokens(issuer=s.issuer, lifetime=s.access_token_ttl, subjects=subjects()),
    )


def session_checks() -> SessionChecks:
    """What prompt=none and id_token_hint need (chalicelib.oauth.oidc_request)."""
    from chalicelib.oauth.oidc_request import SessionChecks

    return _once(
        "session_checks",
        lambda: SessionChecks(
            issuer=settings().issuer,
            key_for=signing_keys().verifier,
            subjects=subjects(),
            grants=grant_store(),
        ),
    )


def userinfo_endpoint() -> UserinfoEndpoint:
    from chalicelib.oauth.userinfo import UserinfoEndpoint

    return _once(
        "userinfo_endpoint",
        lambda: UserinfoEndpoint(
            settings=settings(),
            clock=_clock,
            keys=signing_keys(),
            grants=grant_store(),
            users=user_store(),
            clients=cached_clients(),
            subjects=subjects(),
        ),
    )


def logout_endpoint() -> LogoutEndpoint:
    """RP-initiated logout (chalicelib.web.logout). Built per request, like the sign-in pages: it
    holds the session signer, which follows pepper rotation."""
    from chalicelib.web.logout import LogoutEndpoint

    s = settings()
    return LogoutEndpoint(
        issuer=s.issuer,
        key_for=signing_keys().verifier,
        clients=cached_clients(),
        subjects=subjects(),
        grants=refresh_grants(),
        signer=session_signer(),
        secure_cookies=s.cookie_secure,
    )


def code_store() -> CodeStore:
    """Authorization codes (chalicelib.store.auth_codes)."""
    from chalicelib.store.auth_codes import CodeStore

    return _once("code_store", lambda: CodeStore(aws.client("dynamodb"), settings().table_name))


def session_signer() -> SessionSigner:
    """Session and CSRF signer, keyed from the pepper set (rotates with it; cheap to build)."""
    from chalicelib.oauth.sessions import SessionSigner, derive_key

    return SessionSigner([(p.id, derive_key(p.secret)) for p in peppers().all()])


def authorization_endpoint() -> AuthorizationEndpoint:
    """The hosted authorization endpoint (chalicelib.web.authorize). Built per request: it holds the
    session signer, which follows pepper rotation."""
    from chalicelib.web.authorize import AuthorizationEndpoint

    s = settings()
    return AuthorizationEndpoint(
        settings=s,
        clients=cached_clients(),
        users=user_store(),
        guard=login_guard(),
        codes=code_store(),
        signer=session_signer(),
        secure_cookies=s.cookie_secure,
        checks=session_checks(),
    )


def account_pages() -> AccountPages:
    """Connected-apps pages (chalicelib.web.account)."""
    from chalicelib.web.account import AccountPages

    s = settings()
    return AccountPages(
        clients=cached_clients(),
        users=user_store(),
        guard=login_guard(),
        grants=grant_store(),
        signer=session_signer(),
        secure_cookies=s.cookie_secure,
    )


def login_guard() -> LoginGuard:
    """Brute-force protection shared by every password login (chalicelib.oauth.login_guard)."""
    from chalicelib.oauth.login_guard import LoginGuard, policy_from
    from chalicelib.store.login_attempts import LoginAttempts

    return _once(
        "login_guard",
        lambda: LoginGuard(
            LoginAttempts(aws.client("dynamodb"), settings().table_name), policy_from(settings())
        ),
    )


def grant_store() -> GrantStore:
    """Refresh-token families, tokens and the access-token deny-list (chalicelib.store.grant_store).
    ``is_revoked(jti, sid)`` is the one-call revocation check for the authorizer."""
    from chalicelib.store.grant_store import GrantStore

    return _once("grant_store", lambda: GrantStore(aws.client("dynamodb"), settings().table_name))


def peppers() -> PepperRing:
    """The refresh-token pepper set (chalicelib.tokens.peppers), cached like the key sets."""
    from chalicelib.tokens.peppers import PepperRing

    return _once("peppers", lambda: PepperRing(_cached_secret(settings().pepper_secret)))


def refresh_grants() -> RefreshTokens:
    """Refresh-token rotation and re-use detection (chalicelib.oauth.refresh_tokens)."""
    from chalicelib.oauth.refresh_tokens import RefreshTokens

    s = settings()
    return _once(
        "refresh_grants",
        lambda: RefreshTokens(
            store=grant_store(),
            peppers=peppers(),
            absolute_ttl=s.refresh_token_absolute_ttl,
            idle_ttl=s.refresh_token_idle_ttl,
            retry_window=s.refresh_retry_window,
        ),
    )


def revocation_endpoint() -> RevocationEndpoint:
    from chalicelib.oauth.revocation import RevocationEndpoint

    return _once(
        "revocation_endpoint",
        lambda: RevocationEndpoint(
            settings=settings(),
            clock=_clock,
            clients=cached_clients(),
            refresh=refresh_grants(),
            deny_list=grant_store(),
            keys=signing_keys(),
        ),
    )


def introspection_endpoint() -> IntrospectionEndpoint:
    from chalicelib.oauth.introspection import IntrospectionEndpoint

    return _once(
        "introspection_endpoint",
        lambda: IntrospectionEndpoint(
            settings=settings(),
            clock=_clock,
            clients=cached_clients(),
            refresh=refresh_grants(),
            revocations=grant_store(),
            keys=signing_keys(),
            subjects=subjects(),
        ),
    )
