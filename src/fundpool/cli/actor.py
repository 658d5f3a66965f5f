"""Who a CLI command acting on a local store acts as: the operating-system user running it
(`cli_actor`), recorded with every change it makes (a key, a user, an acknowledgement)."""

from __future__ import annotations

import getpass

from fundpool.core.actor import Actor, cli_actor


def os_user() -> str:
    """The operating-system user's name; "unknown" where there is none (a container whose
    uid has no passwd entry and no $USER makes `getuser` raise)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def local_actor() -> Actor:
    return cli_actor(os_user())
