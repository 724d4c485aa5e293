"""Proof Key for Code Exchange (RFC 7636), S256 only.

``plain`` is refused (RFC 9700 §2.1.1: S256 is the only method a client should use, and an attacker
who can read the authorization request learns a plain verifier). The verifier is 43-128 characters
from the unreserved set (§4.1); the challenge is BASE64URL(SHA256(verifier)) without padding, which
is always exactly 43 characters.
"""

from __future__ import annotations

import base64
import hashlib
import re

from chalicelib.core.untrusted import same

# fullmatch, not "$": "$" also matches before a trailing newline.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def valid_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str, challenge: str) -> bool:
    if not valid_verifier(verifier) or not valid_challenge(challenge):
        return False
    return same(s256(verifier), challenge)
