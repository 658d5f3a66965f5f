"""Migrations of the projections component."""
