"""Migrations of the auth component."""
