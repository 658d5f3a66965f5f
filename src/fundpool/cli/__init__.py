"""The `fundpool` command line: `ledger`, `pool`, `payment`, `simulate` and `demo`."""
