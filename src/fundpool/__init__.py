"""fundpool: a treasury fund-pool engine with an exact, tamper-evident double-entry ledger."""

__version__ = "0.1.0"
