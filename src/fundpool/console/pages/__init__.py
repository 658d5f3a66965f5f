"""The console's pages; importing a module registers its `@ui.page` routes."""

from __future__ import annotations


def register() -> None:
    from fundpool.console.pages import login, overview, stream  # noqa: F401
