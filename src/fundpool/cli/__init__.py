"""The `fundpool` command line: `fundpool ledger ...` and `fundpool demo`."""
