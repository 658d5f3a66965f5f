"""Who did something: every action on the pool's money records its actor (a payment's step, an
approval, an alert acknowledgement, a key or user change, a ledger adjustment).

An actor is a value: the kind of principal and its stable id, the name shown, the roles it held
at the time, the session or key it came through, and the request id the API gave the call. The
engine's own steps name the engine (`ENGINE`); the CLI acting on a local store names the
operating-system user (`cli_actor`); the traffic simulator names itself.

Two actors are the same person when `who` is equal (kind and id): the four-eyes rule compares
that, never a display name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACTOR_KINDS = frozenset({"user", "key", "engine", "cli", "simulator", "system"})
NAME_LENGTH_MAX = 200


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # one of ACTOR_KINDS
    id: str  # the user's or key's id; "engine"; the OS user for the CLI
    name: str  # what is shown: the username, the key's name, "engine"
    roles: tuple[str, ...] = ()
    session_id: str | None = None  # a user's console or API session
    key_id: str | None = None  # the API key the call came with
    request_id: str | None = None  # the API's X-Request-ID of the call

    @property
    def who(self) -> str:
        """The principal, as compared for separation of duties: `user:<id>`, `key:<id>`."""
        return f"{self.kind}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "id": self.id, "name": self.name,
                               "roles": list(self.roles)}
        for name in ("session_id", "key_id", "request_id"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc

    def shown(self) -> dict[str, Any]:
        """Every field, the absent ones null: as the API and the CLI show an actor."""
        return {"session_id": None, "key_id": None, "request_id": None, **self.to_dict()}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Actor:
        return cls(str(doc["kind"]), str(doc["id"]), str(doc.get("name") or doc["id"]),
                   tuple(str(r) for r in doc.get("roles") or ()),
                   doc.get("session_id"), doc.get("key_id"), doc.get("request_id"))

    def with_request(self, request_id: str | None) -> Actor:
        return Actor(self.kind, self.id, self.name, self.roles, self.session_id, self.key_id,
                     request_id)


ENGINE = Actor("engine", "engine", "engine", ("engine",))
SIMULATOR = Actor("simulator", "simulator", "simulator", ("cashier",))
# The simulator's approvals are a second person's, as a cashier's payout needs (four eyes).
SIMULATED_APPROVER = Actor("simulator", "simulated-approver", "simulated approver",
                           ("approver",))
SYSTEM = Actor("system", "system", "system", ("system",))


def cli_actor(os_user: str) -> Actor:
    """The CLI acting on a local store: the operating-system user running it."""
    return Actor("cli", os_user[:NAME_LENGTH_MAX] or "unknown", os_user[:NAME_LENGTH_MAX]
                 or "unknown", ("admin",))
