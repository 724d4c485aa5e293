"""The DynamoDB and Secrets Manager adapters: the AWS client factory, the table's item codec and
one module per kind of record (clients, users, authorization codes, grants, rules, demo data).

Belongs here: reading and writing AWS, conditional writes and their outcomes; no HTTP, no OAuth.
May import: ``chalicelib.core``. Not tokens, oauth, web or ops.
"""
