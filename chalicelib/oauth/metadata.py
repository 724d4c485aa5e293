"""Authorization server metadata (RFC 8414 §2) and the JWKS document (RFC 7517 §5).

The document states what the server supports, from the stage's settings alone, so it is the same
for every reader at every moment: it never depends on which clients happen to be registered.
The password grant is listed only where the stage enables it (``TESSERA_PASSWORD_GRANT``; RFC 9700
§2.4 says it must not be used, so it is offered only on purpose).
"""

from __future__ import annotations

from chalicelib.oauth.client_auth import AUTH_METHODS


def metadata(
    issuer: str,
    *,
    grant_types: list[str],
    scopes: list[str] | None = None,
    revocation: bool = False,
    introspection: bool = False,
) -> dict[str, object]:
    code_flow = "authorization_code" in grant_types
    doc: dict[str, object] = {
        "issuer": issuer,
        "token_endpoint": issuer + "/oauth2/token",
        "jwks_uri": issuer + "/.well-known/jwks.json",
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"] if code_flow else [],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "service_documentation": issuer + "/",
        # PKCE is built into the authorization endpoint and S256 is its only method: say so even
        # while no client is registered for the code flow (RFC 8414 §2: omitted = no PKCE).
        "code_challenge_methods_supported": ["S256"],
    }
    if scopes is not None:
        doc["scopes_supported"] = scopes
    if code_flow:
        doc["authorization_endpoint"] = issuer + "/oauth2/authorize"
        doc["response_modes_supported"] = ["query"]
        # RFC 9207: the redirect carries iss, so clients can detect mix-up attacks.
        doc["authorization_response_iss_parameter_supported"] = True
    if revocation:
        doc["revocation_endpoint"] = issuer + "/oauth2/revoke"
        doc["revocation_endpoint_auth_methods_supported"] = list(AUTH_METHODS)
    if introspection:
        doc["introspection_endpoint"] = issuer + "/oauth2/introspect"
        doc["introspection_endpoint_auth_methods_supported"] = [
            "client_secret_basic",
            "client_secret_post",
        ]
    return doc
