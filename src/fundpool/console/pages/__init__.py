"""The console's pages; importing a module registers its `@ui.page` routes."""

from __future__ import annotations


def register() -> None:
    from fundpool.console.pages import (  # noqa: F401
        approval_rules,
        approvals,
        audit,
        drill,
        keys,
        login,
        operations,
        overview,
        policies,
        recon,
        risk,
        stream,
        treasury,
    )
