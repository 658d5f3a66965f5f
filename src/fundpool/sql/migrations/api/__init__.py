"""Migrations of the api component."""
