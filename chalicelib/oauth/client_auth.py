"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3).

Methods: ``client_secret_basic`` (must be supported, §2.3.1), ``client_secret_post``, and ``none``
for public clients, which send only ``client_id``. Exactly one method per request (§2.3).
A failure is ``invalid_client`` (401); when the client tried the Authorization header, the answer
carries ``WWW-Authenticate`` (§5.2).
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.core.errors import InvalidClient, InvalidRequest
from chalicelib.core.forms import OAuthRequest, parse_basic
from chalicelib.core.records import Client

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


class ClientLookup(Protocol):
    def get(self, client_id: str) -> Client | None: ...


def authenticate_client(
    request: OAuthRequest, form: dict[str, str], clients: ClientLookup, realm: str
) -> Client:
    authorization = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}
    if authorization is not None:
        try:
            client_id, secret = parse_basic(authorization)
        except InvalidClient as exc:
            raise InvalidClient(exc.description, headers=challenge) from exc
        if "client_secret" in form:
            raise InvalidRequest("use only one client authentication method")
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequest("client_id does not match the authenticated client")
        client = clients.get(client_id)
        if client is None or not client.check_secret(secret):
            raise InvalidClient("client authentication failed", headers=challenge)
        return client

    body_client_id = form.get("client_id")
    if body_client_id is None:
        raise InvalidClient("client authentication required")
    client = clients.get(body_client_id)
    if client is None:
        raise InvalidClient("client authentication failed")
    body_secret = form.get("client_secret")
    if body_secret is None:
        if not client.public:
            raise InvalidClient("client authentication failed")
        return client
    if not client.check_secret(body_secret):
        raise InvalidClient("client authentication failed")
    return client
