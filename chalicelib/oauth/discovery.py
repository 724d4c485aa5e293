"""OpenID Connect Discovery 1.0 §3 and RP-Initiated Logout 1.0 §2.1: the OpenID Provider's
members of the metadata document.

One document is served at both names (``/.well-known/openid-configuration`` and RFC 8414's
``/.well-known/oauth-authorization-server``, as RFC 8414 §5 allows), the same for every reader.
The OpenID members appear while the code flow is offered (a client registered for it), since ID
tokens come only from it. ``id_token_signing_alg_values_supported`` lists the algorithms of the
published keys: ID tokens are signed like access tokens, with ES256 keys by default (Discovery
asks for RS256 to be listed: ``TESSERA_SIGNING_ALG=RS256`` gives it; README, "OpenID Connect").
"""

from __future__ import annotations

from chalicelib.oauth.oidc import CLAIMS_SUPPORTED, SUBJECT_TYPES
from chalicelib.oauth.oidc_request import PROMPTS

USERINFO_PATH = "/oauth2/userinfo"
END_SESSION_PATH = "/oauth2/logout"
OIDC_SCOPES = ("openid", "profile", "email")


def with_openid(doc: dict[str, object], algs: list[str]) -> dict[str, object]:
    """``doc`` (RFC 8414 metadata) with the OpenID Provider members, if it offers the code flow."""
    if "authorization_endpoint" not in doc:
        return doc
    issuer = str(doc["issuer"])
    listed = doc.get("scopes_supported", ())
    scopes = {str(s) for s in listed} if isinstance(listed, list | tuple) else set()
    return {
        **doc,
        "scopes_supported": sorted(scopes | set(OIDC_SCOPES)),
        "userinfo_endpoint": issuer + USERINFO_PATH,
        "end_session_endpoint": issuer + END_SESSION_PATH,
        "subject_types_supported": list(SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": sorted(set(algs)),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "prompt_values_supported": list(PROMPTS),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
