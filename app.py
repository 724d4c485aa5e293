"""Tessera: routes, the authorizer and scheduled functions. The logic lives in chalicelib/.

Keep this module light: the authorizer Lambda imports it too, so anything imported here is paid at
every function's cold start. Services are built lazily by ``chalicelib.services``.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, Response

from chalicelib import http, services

app = Chalice(app_name="tessera")
app.debug = False  # no tracebacks in 500 bodies, ever

_ANY = ["*/*"]  # we check the content type ourselves, so errors are OAuth JSON, not Chalice's 415
_ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


# --- OAuth 2.0 endpoints ------------------------------------------------------------------


@app.route("/oauth2/token", methods=_ALL_METHODS, content_types=_ANY)
def token() -> Response:
    """RFC 6749 token endpoint (chalicelib.token_endpoint)."""
    return http.oauth_call(
        lambda: services.token_endpoint().handle(http.to_oauth_request(app.current_request))
    )


# --- Discovery ----------------------------------------------------------------------------


@app.route("/.well-known/oauth-authorization-server", methods=["GET"])
def authorization_server_metadata() -> Response:
    """RFC 8414 metadata."""
    from chalicelib.config import settings
    from chalicelib.metadata import metadata

    def build() -> Any:
        found = services.advertised(services.clock().now())
        return metadata(
            settings().issuer,
            grant_types=found["grant_types"],
            scopes=found["scopes"],
        )

    return http.oauth_call(build, no_store=False)


@app.route("/.well-known/jwks.json", methods=["GET"])
def jwks() -> Response:
    """RFC 7517 key set: public keys only (next, current, previous)."""
    from chalicelib.config import settings

    def build() -> Response:
        return http.json_response(
            services.signing_keys().jwks(),
            headers={"Cache-Control": f"public, max-age={settings().key_cache_ttl}"},
        )

    return http.oauth_call(build)
