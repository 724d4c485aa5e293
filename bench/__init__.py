"""Benchmarks (``make bench`` / ``python -m bench``): cost per token against the floor and a peer.

Each measurement runs in its own fresh interpreter (``python -m bench.<module>``) and prints one
JSON document; ``bench.__main__`` runs them, prints one table and writes ``BENCHMARKS.md``. The
in-process measurements answer AWS calls with canned responses captured once from moto
(``bench.world``), so moto's own cost (>= 90% of any local end-to-end time) does not drown ours.
Not part of ``make test``.
"""
