"""Password hashing with Argon2id (RFC 9106), stored as PHC strings.

Parameters are OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1). They travel inside the PHC string,
so they can be raised later: ``needs_rehash`` tells the login path to store a new hash after a
successful login with old parameters.

Unknown usernames are checked against a dummy hash with the same parameters, so a wrong username
and a wrong password cost the same time (RFC 6749 §10.10 / user enumeration).
"""

from __future__ import annotations

import os
import re
from functools import cache

MEMORY_KIB = 19 * 1024
ITERATIONS = 2
LANES = 1
_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


def hash_password(password: str) -> str:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    kdf = Argon2id(
        salt=os.urandom(16), length=32, iterations=ITERATIONS, lanes=LANES, memory_cost=MEMORY_KIB
    )
    return kdf.derive_phc_encoded(password.encode("utf-8"))


def verify_password(password: str, phc: str | None) -> bool:
    """Constant-work check; with ``phc`` None it burns the same time and returns False."""
    from cryptography.exceptions import InvalidKey
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    target = phc if phc else _dummy_hash()
    try:
        Argon2id.verify_phc_encoded(password.encode("utf-8"), target)
    except (InvalidKey, ValueError):
        return False
    return phc is not None


def needs_rehash(phc: str) -> bool:
    found = _PARAMS.match(phc)
    if not found:
        return True
    m, t, p = (int(x) for x in found.groups())
    return m < MEMORY_KIB or t < ITERATIONS or p != LANES


@cache
def _dummy_hash() -> str:
    return hash_password(os.urandom(16).hex())
