"""The protocol: one module per standard or grant (RFC 6749 token endpoint and grants, RFC 7636
PKCE, RFC 7009 revocation, RFC 7662 introspection, RFC 8414 metadata, client authentication,
OpenID Connect ID tokens, discovery, userinfo and request parameters, sign-in and its guard,
the sign-in session).

Belongs here: what an RFC decides, on parsed requests; answers are values and ``OAuthError``s.
May import: ``chalicelib.core``, ``chalicelib.tokens``. Not store (storage comes in through
core's ports, wired by ``chalicelib.web.services``), web or ops (no Chalice, no pages).
"""
