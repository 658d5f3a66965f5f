"""The fundpool HTTP server (FastAPI): the `/v1` API and the operational routes.

Nothing is imported here: `fundpool.server.v1.models` (the wire models the Python client
shares) must load without FastAPI. Import `fundpool.server.app.create_app` and
`fundpool.server.metrics` by their modules.
"""
