"""Migrations of the risk component."""
