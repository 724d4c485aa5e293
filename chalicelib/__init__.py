"""Tessera's code, in layers (README "Layout"): core <- tokens <- oauth <- web <- ops, and store
(which imports only core) beside them, wired in by web and used by ops: web -> oauth -> tokens/ports
<- store.

The only modules outside a layer are the entry points: ``admin`` (``python -m chalicelib.admin``)
and ``authorizer_lambda`` (the deployed authorizer's handler).
"""
