"""Bearer tokens in the ``Authorization`` header (RFC 6750 §2.1): what the authorizer and the
userinfo endpoint read before they validate the token."""

from __future__ import annotations

import re

from chalicelib.tokens import access_tokens

# A header longer than the longest token we issue is refused before the regex runs.
_MAX_HEADER = access_tokens.MAX_TOKEN_LENGTH + 64
# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")


def bearer_token(header: object) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, or None."""
    if not isinstance(header, str) or len(header) > _MAX_HEADER:
        return None
    found = _BEARER.fullmatch(header.strip(" \t"))
    return found.group(1) if found else None
