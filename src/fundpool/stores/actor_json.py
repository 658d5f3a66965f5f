"""An actor as the stores keep it: JSON text (`Actor.to_dict`) in a nullable column, so a row
written before actors were kept (NULL) reads back as None, shown as unknown."""

from __future__ import annotations

import json

from fundpool.core.actor import Actor


def actor_text(actor: Actor | None) -> str | None:
    if actor is None:
        return None
    return json.dumps(actor.to_dict(), sort_keys=True, separators=(",", ":"))


def actor_from_text(text: str | None) -> Actor | None:
    return None if text is None else Actor.from_dict(json.loads(text))
