"""CORS for browser apps at the token and revocation endpoints (Fetch standard; RFC 6749 is
silent, every major server does it for single-page apps).

A single-page app on its own origin exchanges its code and refreshes with a form POST and no
Authorization header: a CORS "simple request", so no preflight is needed. The response may be read
by the page only if it carries ``Access-Control-Allow-Origin``. Tessera grants that to exactly the
origins of the client's registered redirect URIs (Keycloak's "+" web-origins rule): no wildcard,
no credentials, and only for the client named in the request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from chalicelib.core.records import Client


def origins_of(client: Client) -> frozenset[str]:
    out = set()
    for uri in client.redirect_uris:
        parts = urlsplit(uri)
        if parts.scheme in {"https", "http"} and parts.netloc:
            out.add(f"{parts.scheme}://{parts.netloc}".lower())
    return frozenset(out)


def allow_origin(origin: str | None, client: Client | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for this request, or None."""
    if not origin or client is None or not client.redirect_uris:
        return None
    return origin if origin.lower() in origins_of(client) else None
