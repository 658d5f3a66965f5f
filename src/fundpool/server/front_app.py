"""`FundpoolApp`: FastAPI with a front door around its whole middleware stack.

Its own module so that the app factory (server/app.py) and the `/v1` package, which sets the
front (server/v1/__init__.py), both import it from below instead of from each other.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp


class FundpoolApp(FastAPI):
    """FastAPI with a `front`: an ASGI layer wrapped around the whole middleware stack, outside
    even Starlette's error middleware (the API's front door, server/v1/front.py)."""

    front: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.front is None else self.front(stack)
