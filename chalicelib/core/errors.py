"""OAuth 2.0 error responses (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 6750 §3.1).

Protocol code raises these anywhere; ``chalicelib.web.http`` turns them into a response in one
place.
Descriptions are fixed strings chosen by us: RFC 6749 restricts their character set, and echoing
client input would be an injection vector.
"""

from __future__ import annotations


class OAuthError(Exception):
    error = "invalid_request"
    status = 400

    def __init__(self, description: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(description or self.error)
        self.description = description
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


class InvalidRequest(OAuthError):
    error = "invalid_request"


class MethodNotAllowed(OAuthError):
    """Not an RFC 6749 code of its own: the body says invalid_request, the status says why."""

    error = "invalid_request"
    status = 405


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class TemporarilyUnavailable(OAuthError):
    """Storage or key-store fault after retries: 503 with Retry-After, nothing issued."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str | None = None, *, retry_after: int = 2):
        super().__init__(
            description or "the service is temporarily unavailable, retry later",
            headers={"Retry-After": str(retry_after)},
        )


class ServerError(OAuthError):
    error = "server_error"
    status = 500
