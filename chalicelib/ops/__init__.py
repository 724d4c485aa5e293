"""Operations, kept off the API function's import path: key and pepper rotation (the rotation
Lambda's body) and the admin command with its areas (clients, users, grants, keys, rules).

Belongs here: what an operator or a scheduled function runs, never a request.
May import: every layer. Imported by nothing but ``app.py``'s rotation function and the
``python -m chalicelib.admin`` entry point.
"""
