"""The DynamoDB and Secrets Manager adapters: the AWS client factory, the table's item codec and
one module per kind of record (clients, users, authorization codes, grants, login counters,
pairwise salts, rules, demo data). They implement the Protocols of ``chalicelib.core.ports`` (and
those beside their one consumer in oauth) over the records of ``chalicelib.core.records``.

Belongs here: reading and writing AWS, conditional writes and their outcomes; no HTTP, no OAuth.
May import: ``chalicelib.core``. Not tokens, oauth, web or ops. Imported by web (the wiring) and
ops only.
"""
