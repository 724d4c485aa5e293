"""The HTTP edge: Chalice glue (``http``), CORS, the hosted pages and the endpoints that render
them (authorization, account, logout), the API Gateway authorizer, the demo API and the
service wiring (``services``: the one place that builds the objects from settings and clients).

Belongs here: requests and responses, cookies, HTML, the composition root.
May import: core, tokens, store, oauth. Not ops. Imported only by ``app.py`` and the entry
points (``chalicelib.authorizer_lambda``).
"""
