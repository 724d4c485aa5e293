"""Shared by every layer: the records (``records``: clients, users, grants, codes, login
counters) and the Protocols the store implements (``ports``), the clock, configuration, protocol
errors, backend faults, telemetry and the audit log, form and untrusted-input parsing, scope syntax
and the attached APIs' rules.

Belongs here: what two or more layers need and that knows no storage, no HTTP framework, no keys.
May import: the standard library and ``chalicelib.core`` only (never tokens, store, oauth, web,
ops).
"""
