"""An actor as the API shows it: who did something (a key change, a user change, an alert's
acknowledgement), with the roles they held, the session or key they came through and the
request id of the call.

A record kept before actors were (an old key's `created_by` text, an alert acknowledged by a
name) shows as kind `unknown`, with that text as its id and name; one with nothing kept at all
is null.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from fundpool.core.actor import Actor

UNKNOWN_KIND = "unknown"


class ActorOut(BaseModel):
    kind: str = Field(description="user | key | engine | cli | simulator | system; `unknown` "
                      "for a record kept before actors were.")
    id: str = Field(description="The user's or key's id; the OS user for the CLI.")
    name: str = Field(description="What is shown: the username, the key's name.")
    roles: list[str] = Field(description="The roles held at the time.")
    session_id: str | None = Field(None, description="The user's session.")
    key_id: str | None = Field(None, description="The API key the call came with.")
    request_id: str | None = Field(None, description="The call's X-Request-ID.")


def actor_doc(actor: Actor | None, legacy_name: str | None = None) -> dict[str, object] | None:
    """`actor` as `ActorOut` shows it; without one, the name kept before actors were (kind
    `unknown`), else None."""
    if actor is not None:
        return actor.shown()
    if legacy_name is None:
        return None
    return Actor(UNKNOWN_KIND, legacy_name, legacy_name).shown()
