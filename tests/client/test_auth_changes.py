"""The client reads who changed keys and users (`auth_changes`, `iter_auth_changes`) and sees
the actor on the keys it makes, against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fundpool.client import Client, PermissionDenied
from tests.client import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("client-auth") / "data") as live:
        yield live


def test_the_trail_of_key_and_user_changes(server: LiveServer) -> None:
    with Client(server.url, server.admin_key, backoff_s=0.0) as api:
        me = api.me()
        created = api.create_key("trail-key", ["viewer"])
        assert (created.key.created_by.kind, created.key.created_by.id) == ("key", me.id)
        assert created.key.created_by.request_id  # the server made one: the client sent none
        api.rotate_key(created.key.id)
        user = api.create_user("trail-user", "a long enough password", ["viewer"])
        assert user.created_by is not None
        assert user.created_by.name == me.name
        api.disable_user("trail-user")

        first = api.auth_changes(limit=2)
        assert [c.action for c in first.data] == ["user.disabled", "user.created"]
        assert first.next_cursor is not None
        every = list(api.iter_auth_changes(target_kind="key", target_id=created.key.id,
                                           limit=1))
        assert [c.action for c in every] == ["key.rotated", "key.created"]
        assert all(c.actor is not None and c.actor.id == me.id for c in every)
    with Client(server.url, server.viewer_key, backoff_s=0.0) as viewer, \
            pytest.raises(PermissionDenied):
        viewer.auth_changes()
