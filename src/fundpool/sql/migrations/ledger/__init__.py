"""Migrations of the ledger component."""
