"""Tessera: routes, the authorizer and scheduled functions. The logic lives in chalicelib/.

Keep this module light: the API handler imports it at every cold start. (In AWS the authorizer
function runs ``chalicelib.authorizer_lambda.handler`` and never imports it; ``chalice local`` runs
``tessera_authorizer`` below.) Services are built lazily by ``chalicelib.web.services``.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import AuthRequest, Chalice, Request, Response

from chalicelib.core import telemetry
from chalicelib.core.api_rules import AUTHORIZER_CACHE_TTL
from chalicelib.core.config import demo_enabled
from chalicelib.web import http, services, snapstart

# What the routes load on their first event, imported in init or, under SnapStart, before the
# snapshot (chalicelib/web/snapstart.py; tests/functional/test_snapstart.py checks that nothing
# is left to load).
PRELOAD = (
    "chalicelib.core.audit",
    "chalicelib.oauth.token_endpoint",
    "chalicelib.oauth.revocation",
    "chalicelib.oauth.introspection",
    "chalicelib.web.authorize",
    "chalicelib.web.account",
    "chalicelib.oauth.userinfo",
    "chalicelib.web.logout",
    "chalicelib.oauth.discovery",
    "chalicelib.oauth.metadata",
    "chalicelib.oauth.oidc_request",
    "chalicelib.web.demo_api",
    "chalicelib.store.demo_store",
    "chalicelib.web.cors",
    "chalicelib.oauth.login_guard",
    # The stores oauth gets from the wiring (services.py) instead of importing them.
    "chalicelib.store.clients",
    "chalicelib.store.grant_store",
    "chalicelib.store.login_attempts",
    "chalicelib.store.sector_salts",
    "chalicelib.store.secret_store",
    "chalicelib.tokens.keys",
    "cryptography.hazmat.backends.openssl",
    "encodings.idna",  # host names of the AWS endpoints
)
snapstart.prepare(PRELOAD)

# Our log lines are JSON with the invocation's request id (chalicelib.core.telemetry), not
# Chalice's.
app = Chalice(app_name="tessera", configure_logs=False)
app.debug = False  # no tracebacks in 500 bodies, ever

_ANY = ["*/*"]  # we check the content type ourselves, so errors are OAuth JSON, not Chalice's 415
_ALL_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"]  # all: OAuth JSON


@app.middleware("http")
def request_log(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """One JSON line per request (chalicelib.core.audit): never a token, secret or password; the
    request is one invocation (chalicelib.core.telemetry: request id, cold start, its metrics)."""
    from chalicelib.core import audit

    with telemetry.Invocation(event.lambda_context):
        return audit.log_request(event, get_response)


def _request() -> Request:
    """The request being routed (Chalice sets it before it calls a route)."""
    request = app.current_request
    assert request is not None
    return request


# --- OAuth 2.0 endpoints ------------------------------------------------------------------


@app.route("/oauth2/token", methods=_ALL_METHODS, content_types=_ANY)
def token() -> Response:
    """RFC 6749 token endpoint (chalicelib.oauth.token_endpoint); CORS for browser apps (.cors)."""
    request = http.to_oauth_request(_request())
    response = http.oauth_call(lambda: services.token_endpoint().handle(request))
    return http.with_cors(response, request, services.cached_clients())


@app.route("/oauth2/revoke", methods=_ALL_METHODS, content_types=_ANY)
def revoke() -> Response:
    """RFC 7009 revocation (chalicelib.oauth.revocation): 200 with an empty body; CORS as /token."""
    request = http.to_oauth_request(_request())

    def run() -> Response:
        services.revocation_endpoint().handle(request)
        return Response(body="", status_code=200, headers=dict(http.NO_STORE))

    return http.with_cors(http.oauth_call(run), request, services.cached_clients())


@app.route("/oauth2/introspect", methods=_ALL_METHODS, content_types=_ANY)
def introspect() -> Response:
    """RFC 7662 introspection (chalicelib.oauth.introspection)."""
    return http.oauth_call(
        lambda: services.introspection_endpoint().handle(http.to_oauth_request(_request()))
    )


# --- Authorization code + PKCE and the account pages (chalicelib.web.authorize, .account) -----


def _now() -> int:
    return int(services.clock().now())


@app.route("/oauth2/authorize", methods=["GET"], content_types=_ANY)
def authorize() -> Response:
    """RFC 6749 §4.1 authorization endpoint: sign-in and consent pages, redirect with a code."""
    req = _request()
    return http.page_call(
        lambda: services.authorization_endpoint().get(
            http.query_pairs(req), http.page_cookies(req), _now()
        )
    )


@app.route("/oauth2/authorize", methods=["POST"], content_types=_ANY)
def authorize_form() -> Response:
    """The sign-in and consent forms of the authorization endpoint (CSRF-protected)."""
    req = _request()
    return http.page_call(
        lambda: services.authorization_endpoint().post(
            http.form_pairs(req) or [],
            http.page_cookies(req),
            http.source_ip(req),
            _now(),
        )
    )


@app.route("/account/apps", methods=["GET"], content_types=_ANY)
def connected_apps() -> Response:
    """The applications holding a grant for the signed-in user."""
    req = _request()
    notice = "Access revoked." if ("revoked", "1") in http.query_pairs(req) else ""
    return http.page_call(
        lambda: services.account_pages().apps(http.page_cookies(req), _now(), notice)
    )


@app.route("/account/login", methods=["POST"], content_types=_ANY)
def account_login() -> Response:
    req = _request()
    return http.page_call(
        lambda: services.account_pages().login(
            http.form_pairs(req) or [],
            http.page_cookies(req),
            http.source_ip(req),
            _now(),
        )
    )


@app.route("/account/apps/revoke", methods=["POST"], content_types=_ANY)
def revoke_app() -> Response:
    """Revoke one grant (refresh-token family) of the signed-in user."""
    req = _request()
    return http.page_call(
        lambda: services.account_pages().revoke(
            http.form_pairs(req) or [], http.page_cookies(req), _now()
        )
    )


@app.route("/account/logout", methods=["POST"], content_types=_ANY)
def logout() -> Response:
    req = _request()
    return http.page_call(
        lambda: services.account_pages().logout(
            http.form_pairs(req) or [], http.page_cookies(req), _now()
        )
    )


# --- OpenID Connect: userinfo and RP-initiated logout (chalicelib.oauth.userinfo, .logout) ------


@app.route("/oauth2/userinfo", methods=_ALL_METHODS, content_types=_ANY)
def userinfo() -> Response:
    """OIDC Core §5.3 with RFC 6750 answers; any origin may read them (bearer only, no cookie)."""
    from chalicelib.oauth.userinfo import CORS_HEADERS

    request = http.to_oauth_request(_request())
    if request.method == "OPTIONS":  # CORS preflight: the Authorization header needs one
        return Response(body="", status_code=204, headers=dict(CORS_HEADERS))
    response = http.oauth_call(lambda: services.userinfo_endpoint().handle(request))
    response.headers.update(CORS_HEADERS)
    return response


@app.route("/oauth2/logout", methods=["GET"], content_types=_ANY)
def end_session() -> Response:
    """RP-initiated logout (OIDC RP-Initiated Logout 1.0): ends the session, maybe the grant."""
    req = _request()
    return http.page_call(
        lambda: services.logout_endpoint().get(
            http.query_pairs(req), http.page_cookies(req), _now()
        )
    )


@app.route("/oauth2/logout", methods=["POST"], content_types=_ANY)
def end_session_form() -> Response:
    """The same request sent as a form by the app, or the confirmation form of our page."""
    req = _request()
    return http.page_call(
        lambda: services.logout_endpoint().post(
            http.form_pairs(req), http.page_cookies(req), _now()
        )
    )


# --- Discovery ----------------------------------------------------------------------------


@app.route("/.well-known/oauth-authorization-server", methods=["GET"], content_types=_ANY)
def authorization_server_metadata() -> Response:
    """RFC 8414 metadata, with the OpenID Provider's members (chalicelib.oauth.discovery)."""
    from chalicelib.core.config import settings
    from chalicelib.oauth.discovery import with_openid
    from chalicelib.oauth.metadata import metadata

    def build() -> dict[str, object]:
        s = settings()
        # No API scopes: each attached API defines its own in its rules, which change as teams
        # register them (RFC 8414 §2 lets a server leave some out); with_openid adds OIDC's.
        doc = metadata(
            s.issuer, grant_types=list(s.grant_types), revocation=True, introspection=True
        )
        algs = [key["alg"] for key in services.verifying_keys().jwks()["keys"]]
        return with_openid(doc, algs)

    return http.oauth_call(build, no_store=False)


@app.route("/.well-known/openid-configuration", methods=["GET"], content_types=_ANY)
def openid_configuration() -> Response:
    """OpenID Connect Discovery: the same document as RFC 8414's (RFC 8414 §5 allows it). API
    Gateway's native JWT authorizers (HTTP APIs) find ``jwks_uri`` only here."""
    response: Response = authorization_server_metadata()
    return response


@app.route("/.well-known/jwks.json", methods=["GET"], content_types=_ANY)
def jwks() -> Response:
    """RFC 7517 key set: the public set the authorizer trusts (next, current, previous).
    max-age = key_cache_ttl, which the rotation's publish delay covers (chalicelib.ops.rotation)."""
    from chalicelib.core.config import settings

    def build() -> Response:
        return http.json_response(
            services.verifying_keys().jwks(),
            headers={"Cache-Control": f"public, max-age={settings().key_cache_ttl}"},
        )

    return http.oauth_call(build)


# --- The authorizer and the demo API it protects ------------------------------------------


@app.authorizer(ttl_seconds=AUTHORIZER_CACHE_TTL)
def tessera_authorizer(auth_request: AuthRequest) -> dict[str, object]:
    """API Gateway authorizer (chalicelib.web.authorizer): a policy from the called API's registered
    rules and the token's scopes, ``Unauthorized`` (401) for a missing, invalid, expired or revoked
    token; a fault never allows. Chalice wires the demo routes to it (their rules are data, seeded
    like any attached API's); the deployed function runs the same body without Chalice
    (chalicelib/authorizer_lambda.py), for TOKEN, REQUEST and HTTP API events.
    """
    from chalicelib import authorizer_lambda

    with telemetry.Invocation(None):  # Chalice does not pass the Lambda context on
        return authorizer_lambda.handle(auth_request.token, auth_request.method_arn)


# The demo API exists only in stages whose TESSERA_DEMO is on (local, dev): Chalice builds the
# API from the routes declared at import, and chalice package/deploy import this module with the
# stage's variables, so a stage with the demo off (prod) has no demo routes at all.
if demo_enabled():

    @app.route("/people", methods=["GET"], authorizer=tessera_authorizer, content_types=_ANY)
    def list_people() -> Response:
        """Demo API, scope people:read (its rules: infra/demo-rules.json)."""
        from chalicelib.web import demo_api

        return http.oauth_call(demo_api.list_people)

    @app.route(
        "/people/{person_id}", methods=["GET"], authorizer=tessera_authorizer, content_types=_ANY
    )
    def get_person(person_id: str) -> Response:
        """Demo API, scope people:read."""
        from chalicelib.web import demo_api

        return http.oauth_call(lambda: demo_api.get_person(person_id))

    @app.route("/articles", methods=["GET"], authorizer=tessera_authorizer, content_types=_ANY)
    def list_articles() -> Response:
        """Demo API, scope articles:read."""
        from chalicelib.web import demo_api

        return http.oauth_call(demo_api.list_articles)

    @app.route("/articles", methods=["POST"], authorizer=tessera_authorizer, content_types=_ANY)
    def create_article() -> Response:
        """Demo API, scope articles:write; the author is the token's subject."""
        from chalicelib.web import demo_api

        request = _request()
        return http.oauth_call(
            lambda: demo_api.create_article(
                request.raw_body,
                demo_api.caller(request).get("sub", ""),
                request.headers.get("content-type"),
            )
        )


# --- Rotation -----------------------------------------------------------------------------


@app.lambda_function(name="rotate_keys")
@telemetry.lambda_entry
def rotate_keys(event: dict[str, object], context: object) -> None:
    """Secrets Manager rotation of the signing keys and the pepper (chalicelib.ops.rotation)."""
    from chalicelib.core.config import settings
    from chalicelib.ops import rotation
    from chalicelib.store import aws

    try:
        rotation.handle_event(event, aws.client("secretsmanager"), services.clock(), settings())
    except Exception as exc:  # Secrets Manager retries the step; the alarm watches the count
        telemetry.rotation_failed(event, exc)
        raise
    telemetry.count("RotationStep", str(event["Step"]))  # a known step: handle_event checked it
