"""Tessera's code, in layers (README "Layout"): core <- tokens | store <- oauth <- web <- ops.

The only modules outside a layer are the entry points: ``admin`` (``python -m chalicelib.admin``)
and ``authorizer_lambda`` (the deployed authorizer's handler).
"""
