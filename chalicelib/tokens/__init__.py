"""Keys and secrets: signing and verifying key objects, the key rings read from Secrets Manager
values, access tokens (RFC 9068) and their validation, refresh-token peppers, password hashing.

Belongs here: pure cryptographic and token logic, given its keys and clients by the caller.
May import: ``chalicelib.core``. Not store (storage is injected), oauth, web or ops.
"""
