"""Approvals: rules, signed approvals, separation of duties, delay windows, TOTP."""
