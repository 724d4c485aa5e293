"""Configuration: the one place that reads the environment.

Read lazily (``settings()``), never at import: ``chalice.test.Client`` patches ``os.environ`` only
during each call, and Lambda cold starts should not pay for what a function does not use. The
per-stage values live in ``.chalice/config.json``; the local stack sets the ones that depend on
ports (issuer, emulator endpoint).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pathlib costs ~5 ms at import: only the admin CLI and local stack need it
    from pathlib import Path


class ConfigError(RuntimeError):
    """A required setting is missing or malformed (a deployment mistake, not a client error)."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


class Settings(NamedTuple):
    stage: str
    issuer: str
    audience: str
    table_name: str
    demo_table_name: str
    signing_keys_secret: str
    public_keys_secret: str
    pepper_secret: str
    access_token_ttl: int
    refresh_token_absolute_ttl: int
    refresh_token_idle_ttl: int
    refresh_retry_window: int
    key_cache_ttl: int
    key_stale_max: int
    client_cache_ttl: int
    rules_cache_ttl: int
    clock_leeway: int
    authorizer_checks_revocation: bool
    lockout_threshold: int
    lockout_base_seconds: int
    lockout_max_seconds: int
    realm: str
    cookie_secure: bool
    password_grant: bool = False
    signing_alg: str = "ES256"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/oauth2/token"

    @property
    def grant_types(self) -> tuple[str, ...]:
        """The grant types this stage's token endpoint implements, whichever clients exist: the
        metadata lists exactly these (RFC 8414 §2). Codes and refresh tokens need the pepper set
        (sessions and token hashes are keyed from it); the password grant needs the stage's
        consent (RFC 9700 §2.4), and then a client registered for it."""
        found = ["client_credentials"]
        if self.password_grant:
            found.append("password")
        if self.pepper_secret:
            found += ["refresh_token", "authorization_code"]
        return tuple(found)


@cache
def settings() -> Settings:
    """Settings of this process, read once. Tests call ``settings.cache_clear()``."""
    return Settings(
        stage=os.environ.get("TESSERA_STAGE", "local"),
        issuer=_required("TESSERA_ISSUER").rstrip("/"),
        audience=_required("TESSERA_AUDIENCE"),
        table_name=_required("TESSERA_TABLE"),
        demo_table_name=os.environ.get("TESSERA_DEMO_TABLE", ""),
        signing_keys_secret=_required("TESSERA_SIGNING_KEYS_SECRET"),
        public_keys_secret=_required("TESSERA_PUBLIC_KEYS_SECRET"),
        pepper_secret=os.environ.get("TESSERA_PEPPER_SECRET", ""),
        access_token_ttl=_int("TESSERA_ACCESS_TOKEN_TTL", 900),
        refresh_token_absolute_ttl=_int("TESSERA_REFRESH_TOKEN_ABSOLUTE_TTL", 30 * 86400),
        refresh_token_idle_ttl=_int("TESSERA_REFRESH_TOKEN_IDLE_TTL", 7 * 86400),
        refresh_retry_window=_int("TESSERA_REFRESH_RETRY_WINDOW", 5),
        key_cache_ttl=_int("TESSERA_KEY_CACHE_TTL", 300),
        key_stale_max=_int("TESSERA_KEY_STALE_MAX", 3600),
        client_cache_ttl=_int("TESSERA_CLIENT_CACHE_TTL", 60),
        # How long a warm authorizer keeps the APIs' rules before one Query re-reads them all.
        rules_cache_ttl=_int("TESSERA_RULES_CACHE_TTL", 60),
        clock_leeway=min(_int("TESSERA_CLOCK_LEEWAY", 30), 60),
        authorizer_checks_revocation=_bool("TESSERA_AUTHORIZER_CHECKS_REVOCATION", False),
        lockout_threshold=_int("TESSERA_LOCKOUT_THRESHOLD", 5),
        lockout_base_seconds=_int("TESSERA_LOCKOUT_BASE_SECONDS", 60),
        lockout_max_seconds=_int("TESSERA_LOCKOUT_MAX_SECONDS", 3600),
        realm=os.environ.get("TESSERA_REALM", "tessera"),
        # Session cookies are Secure everywhere but the local stack (plain http on loopback).
        cookie_secure=_bool("TESSERA_COOKIE_SECURE", True),
        # Off unless the stage turns it on: RFC 9700 §2.4 says the grant must not be used.
        password_grant=_bool("TESSERA_PASSWORD_GRANT", False),
        # The algorithm of the keys rotation creates (chalicelib.rotation): a stage switches by
        # rotating, each key keeps its own. RS256 lets HTTP APIs' JWT authorizers verify tokens.
        signing_alg=_choice("TESSERA_SIGNING_ALG", _lower(SIGNING_ALGS), "es256").upper(),
    )


def demo_enabled() -> bool:
    """``TESSERA_DEMO``: whether this stage serves the demo API (/people, /articles) and has its
    table (on in local and dev, off in prod and by default). Read when app.py is imported, unlike
    the settings: Chalice builds the API from the routes declared then, and chalice package and
    chalice deploy import app.py with the stage's variables."""
    return _bool("TESSERA_DEMO", False)


def stage_name() -> str:
    """``TESSERA_STAGE`` alone, for what must name the stage even when the other settings are
    broken (the metrics' ``Stage`` dimension, chalicelib.telemetry)."""
    return os.environ.get("TESSERA_STAGE", "local")


def initialized_ahead() -> bool:
    """Lambda started this process for provisioned concurrency, not for a waiting request
    (``AWS_LAMBDA_INITIALIZATION_TYPE``): its first invocation is no cold start."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level() -> str:
    """``TESSERA_LOG_LEVEL``: the level of the functions' ``tessera.*`` log lines (default INFO,
    where the authorizer's rejections and the token endpoint's refusals are written). Read at
    every invocation by chalicelib.telemetry; request and audit lines are written at any level."""
    raw = os.environ.get("TESSERA_LOG_LEVEL", "").strip().upper() or "INFO"
    if raw not in LOG_LEVELS:
        raise ConfigError(f"TESSERA_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return raw


# Signing algorithms a stage may choose (chalicelib.key_objects supports exactly these).
SIGNING_ALGS = ("ES256", "RS256")


def _lower(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n.lower() for n in names)


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name, "").strip().lower() or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}")
    return raw


def local_state_path(default: Path) -> Path:
    """Where the running local stack records its emulator endpoint and issuer.

    ``make local`` writes it and ``admin --stage local`` reads it. ``TESSERA_LOCAL_STATE`` moves it,
    so a second stack (the end-to-end tests') never replaces a developer's.
    """
    raw = os.environ.get("TESSERA_LOCAL_STATE", "")
    if not raw:
        return default
    from pathlib import Path

    return Path(raw)
