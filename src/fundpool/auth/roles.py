"""Roles and permissions: who may do what, as data.

Every API route names exactly one permission (server/v1/security.py); a caller holds the union of
its roles' permissions, narrowed by an API key's scopes when it has any. Nothing else decides
access, so this table is the whole policy (docs/api.md, "Roles").

Separation of duties is built into the table: a cashier moves money but approves nothing, an
approver approves but creates nothing, an auditor reads and verifies everything and changes
nothing. Only `admin` holds every permission, `ledger:adjust` included: a cashier's raw postings
cannot reach the accounts of pools and merchants, which only their services move (through
routing, approval and the risk checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Permission(StrEnum):
    LEDGER_READ = "ledger:read"  # assets, accounts, balances, history, entries, pendings
    LEDGER_WRITE = "ledger:write"  # assets, accounts, transfers, pending create/post/void
    # A raw posting (transfer, pending, reversal) that touches an account a service owns (a
    # pool's, a merchant's): an adjustment, recorded with its written reason and its actor.
    # It comes on top of the route's own permission (ledger:write, ledger:reverse).
    LEDGER_ADJUST = "ledger:adjust"
    LEDGER_REVERSE = "ledger:reverse"  # reversals: corrections of posted entries
    LEDGER_VERIFY = "ledger:verify"  # re-check the hash chain and the balances
    POOL_READ = "pool:read"  # the pool view
    PAYMENTS_READ = "payments:read"
    PAYMENTS_CREATE = "payments:create"  # one payment or a CSV batch
    PAYMENTS_CANCEL = "payments:cancel"
    PAYMENTS_APPROVE = "payments:approve"
    PAYMENTS_REVIEW = "payments:review"  # hold, release, reject
    CHANNELS_READ = "channels:read"  # channels, routing decisions, batches
    MONITORING_READ = "monitoring:read"  # projections, series, KPIs, alerts, SLOs
    ALERTS_ACKNOWLEDGE = "alerts:acknowledge"
    EVENTS_READ = "events:read"  # the event stream
    KEYS_READ = "keys:read"  # API keys and users, never a secret
    KEYS_MANAGE = "keys:manage"  # create, rotate, revoke API keys
    USERS_MANAGE = "users:manage"  # create users, change roles, disable
    RISK_READ = "risk:read"  # policies, decisions' detail, the review queue, lists, parties
    # Write and activate policies (maker-checker: never one's own), load sanctions lists,
    # clear false positives, keep the party registry.
    RISK_POLICY = "risk:policy"
    # Draft approval rules and vote on their activation (a quorum, never the author).
    APPROVALS_RULES = "approvals:rules"
    # The audit log: its entries, checkpoints, proofs and exports; and its verification.
    AUDIT_READ = "audit:read"
    # Reconciliation: statements, matches, breaks, balance checks, expected payments (read);
    # import statements, run matching, resolve breaks with a note, announce expected payments
    # and save CSV mappings (write). Booking a difference is an adjustment: ledger:adjust too.
    RECON_READ = "recon:read"
    RECON_WRITE = "recon:write"
    # The treasury desk (docs/treasury.md): rates, quotes, P&L, bands, plans, sweeps, credit
    # lines, netting cycles, previews and stress tests (read); quote and convert, propose and
    # execute rebalancing plans, run sweeps, record obligations and run netting cycles, run
    # stress tests (write); approve another person's rebalancing plan (approve).
    TREASURY_READ = "treasury:read"
    TREASURY_WRITE = "treasury:write"
    TREASURY_APPROVE = "treasury:approve"


class Role(StrEnum):
    VIEWER = "viewer"
    CASHIER = "cashier"
    APPROVER = "approver"
    RISK = "risk"
    AUDITOR = "auditor"
    ADMIN = "admin"


P = Permission
_READ = frozenset({P.LEDGER_READ, P.POOL_READ, P.PAYMENTS_READ, P.CHANNELS_READ,
                   P.MONITORING_READ, P.EVENTS_READ, P.RECON_READ, P.TREASURY_READ})

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.CASHIER: _READ | {P.LEDGER_WRITE, P.PAYMENTS_CREATE, P.PAYMENTS_CANCEL,
                           P.RECON_WRITE, P.TREASURY_WRITE},
    Role.APPROVER: _READ | {P.PAYMENTS_APPROVE, P.RISK_READ, P.TREASURY_APPROVE},
    Role.RISK: _READ | {P.PAYMENTS_REVIEW, P.ALERTS_ACKNOWLEDGE, P.RISK_READ, P.RISK_POLICY,
                        P.APPROVALS_RULES},
    Role.AUDITOR: _READ | {P.LEDGER_VERIFY, P.KEYS_READ, P.RISK_READ, P.AUDIT_READ},
    Role.ADMIN: frozenset(Permission),
}


def permissions_of(roles: Iterable[Role], scopes: Iterable[Permission] | None = None
                   ) -> frozenset[Permission]:
    """What a caller with `roles` may do; an API key's `scopes`, when given, narrow it (a scope
    never grants what the roles do not)."""
    held: frozenset[Permission] = frozenset().union(*(ROLE_PERMISSIONS[r] for r in roles))
    return held if scopes is None else held & frozenset(scopes)
