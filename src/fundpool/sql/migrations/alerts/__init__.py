"""Migrations of the alerts component."""
