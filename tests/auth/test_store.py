"""AuthStore on SQLite and on the real PostgreSQL server: keys, users, sessions, and every way
authentication fails."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundpool.auth.errors import (
    AuthenticationFailed,
    InvalidCredentials,
    InvalidKeyExpiry,
    InvalidKeyName,
    InvalidRoles,
    InvalidUsername,
    KeyAlreadyRotated,
    KeyExpired,
    KeyRevoked,
    SessionExpired,
    Unauthenticated,
    UnknownKey,
    UnknownUser,
    UserDisabled,
    UserExists,
    WeakPassword,
)
from fundpool.auth.model import AuthChange, Principal
from fundpool.auth.roles import ROLE_PERMISSIONS, Permission, Role
from fundpool.auth.secrets import (
    hash_secret,
    parse_token,
    password_needs_rehash,
    verify_dummy_password,
)
from fundpool.core.actor import SYSTEM, Actor, cli_actor
from fundpool.core.errors import FundpoolError, StoreError
from fundpool.ledger.ports import LedgerStore
from fundpool.stores import auth_sql as store_module
from fundpool.stores.auth_sql import AuthStore

try:  # rootdir on sys.path (python -m pytest)
    from tests.conftest import PG_URL, new_pg_schema, require_postgres
except ModuleNotFoundError:  # pytest's default rootdir-less import mode puts tests/ on the path
    from conftest import PG_URL, new_pg_schema, require_postgres  # type: ignore[no-redef]

NOW = 1_780_000_000_000_000  # microseconds since the epoch
S = 1_000_000  # microseconds in a second
PASSWORD = "correct horse battery"
KEY_TOKEN = re.compile(r"fpk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
SESSION_TOKEN = re.compile(r"fps_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
THREADS_DONE_S_MAX = 60.0
ALICE = Actor("user", "a11ce", "alice", ("admin",), session_id="s-1", request_id="req-1")


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def auth(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthStore]:
    if request.param == "sqlite":
        sqlite_auth = AuthStore(f"sqlite:///{tmp_path / 'auth.sqlite3'}")
        yield sqlite_auth
        sqlite_auth.close()
        return
    require_postgres()
    schema = new_pg_schema()
    separator = "&" if "?" in PG_URL else "?"
    pg_auth = AuthStore(f"{PG_URL}{separator}schema={schema}")
    try:
        yield pg_auth
    finally:
        pg_auth.close()
        drop_schema(schema)


def password_hash_of(auth: AuthStore, username: str) -> str:
    hashed: str = auth.db.rows("SELECT password_hash FROM users WHERE username = ?",
                             (username,))[0][0]
    return hashed


# --- the store itself ------------------------------------------------------------------------


def test_initialise_is_idempotent(auth: AuthStore) -> None:
    auth.create_key("ci", ["viewer"], now_us=NOW)
    auth.initialise()
    auth.initialise()
    listed = auth.keys()
    assert [key.name for key in listed] == ["ci"]


def test_beside_a_ledger_store_uses_its_database(store: LedgerStore) -> None:
    first = AuthStore.beside(store)
    try:
        info, token = first.create_key("ci", ["viewer"], now_us=NOW)
    finally:
        first.close()
    again = AuthStore.beside(store)
    try:
        assert again.authenticate_key(token, now_us=NOW).id == info.id
    finally:
        again.close()


def test_beside_refuses_other_stores() -> None:
    with pytest.raises(TypeError):
        AuthStore.beside(object())


def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    auth = AuthStore(f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    auth.close()
    with pytest.raises(StoreError):
        auth.keys()


def test_threads_share_one_store(auth: AuthStore) -> None:
    _, token = auth.create_key("ci", ["cashier"], now_us=NOW)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert auth.authenticate_key(token, now_us=NOW).name == "ci"
                auth.keys()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + THREADS_DONE_S_MAX
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # A bound, so that a store that deadlocks fails this test instead of hanging the suite.
    assert not any(thread.is_alive() for thread in threads), \
        f"threads still working after {THREADS_DONE_S_MAX:g} s"
    assert failures == []


# --- tokens ----------------------------------------------------------------------------------


def test_parse_token_takes_the_prefix_with_or_without_its_underscore() -> None:
    text = "fpk_0123456789abcdef_" + "A" * 43
    assert parse_token(text, "fpk") == ("0123456789abcdef", "A" * 43)
    assert parse_token(text, "fpk_") == ("0123456789abcdef", "A" * 43)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fpk_",
        "fps_0123456789abcdef_" + "A" * 43,  # a session token where a key is expected
        "fpk_0123456789ABCDEF_" + "A" * 43,  # ids are lowercase
        "fpk_0123456789abcde_" + "A" * 44,
        "fpk_0123456789abcdef_" + "A" * 42,
        "fpk_0123456789abcdef_" + "A" * 42 + "=",
        "fpk_0123456789abcdef_" + "A" * 43 + "\n",
        "fpk_0123456789abcdef" + "A" * 44,
        "Bearer fpk_0123456789abcdef_" + "A" * 43,
        "fpk_0123456789abcdef_" + "A" * 200,
    ],
)
def test_malformed_tokens_are_unauthenticated(text: str) -> None:
    with pytest.raises(Unauthenticated):
        parse_token(text, "fpk")


def test_error_codes_and_bases() -> None:
    failures: dict[type[FundpoolError], str] = {
        Unauthenticated: "unauthenticated",
        InvalidCredentials: "invalid_credentials",
        KeyExpired: "key_expired",
        KeyRevoked: "key_revoked",
        SessionExpired: "session_expired",
        UserDisabled: "user_disabled",
    }
    for error, code in failures.items():
        assert issubclass(error, AuthenticationFailed)
        assert error.code == code
    assert AuthenticationFailed.code == "authentication_failed"
    others: dict[type[FundpoolError], str] = {
        UnknownKey: "unknown_key", UnknownUser: "unknown_user", UserExists: "user_exists",
        KeyAlreadyRotated: "key_already_rotated", InvalidKeyName: "invalid_key_name",
        InvalidRoles: "invalid_roles", WeakPassword: "weak_password",
        InvalidKeyExpiry: "invalid_expiry", InvalidUsername: "invalid_username",
    }
    for error, code in others.items():
        assert not issubclass(error, AuthenticationFailed)
        assert error.code == code


# --- API keys --------------------------------------------------------------------------------


def test_create_and_authenticate_a_key(auth: AuthStore) -> None:
    info, token = auth.create_key("payroll", ["cashier", "viewer", "cashier"], now_us=NOW,
                                  actor=ALICE)
    assert KEY_TOKEN.fullmatch(token)
    assert token.startswith(f"fpk_{info.id}_")
    assert info.name == "payroll"
    assert info.roles == ("cashier", "viewer")
    assert info.scopes is None
    assert (info.created_at_us, info.expires_at_us, info.revoked_at_us) == (NOW, None, None)
    assert (info.replaced_by, info.created_by, info.creator) == (None, "user:alice", ALICE)
    assert info.state(NOW) == "active"
    principal = auth.authenticate_key(token, now_us=NOW + 1)
    assert principal == Principal(
        kind="key", id=info.id, name="payroll", roles=frozenset({Role.CASHIER, Role.VIEWER}),
        permissions=ROLE_PERMISSIONS[Role.CASHIER], expires_at_us=None,
    )
    assert auth.key(info.id) == info


def test_only_the_hash_of_a_secret_is_stored(auth: AuthStore) -> None:
    info, token = auth.create_key("ci", ["viewer"], now_us=NOW)
    _, secret = parse_token(token, "fpk")
    (row,) = auth.db.rows("SELECT * FROM api_keys WHERE id = ?", (info.id,))
    assert secret not in [str(value) for value in row]
    assert hash_secret(secret) in row


def test_keys_are_listed_oldest_first(auth: AuthStore) -> None:
    second, _ = auth.create_key("b", ["viewer"], now_us=NOW + 5)
    first, _ = auth.create_key("a", ["viewer"], now_us=NOW)
    listed = auth.keys()
    assert [key.id for key in listed] == [first.id, second.id]


def test_unknown_key(auth: AuthStore) -> None:
    with pytest.raises(UnknownKey):
        auth.key("0123456789abcdef")


@pytest.mark.parametrize(
    ("roles", "scopes"),
    [([], None), (["boss"], None), (["viewer"], ["ledger:everything"]), (["viewer"], [])],
)
def test_roles_and_scopes_must_be_known(auth: AuthStore, roles: list[str],
                                        scopes: list[str] | None) -> None:
    with pytest.raises(InvalidRoles):
        auth.create_key("ci", roles, scopes=scopes, now_us=NOW)
    assert auth.keys() == []


@pytest.mark.parametrize("name", ["", "x" * 65, "tab\there"])
def test_key_names_are_short_and_printable(auth: AuthStore, name: str) -> None:
    with pytest.raises(InvalidKeyName):
        auth.create_key(name, ["viewer"], now_us=NOW)


@pytest.mark.parametrize("expires_at_us", [NOW, NOW - 1])
def test_an_expiry_must_lie_ahead(auth: AuthStore, expires_at_us: int) -> None:
    with pytest.raises(InvalidKeyExpiry):
        auth.create_key("ci", ["viewer"], expires_at_us=expires_at_us, now_us=NOW)


def test_a_wrong_secret_for_a_real_id_fails(auth: AuthStore) -> None:
    info, token = auth.create_key("ci", ["admin"], now_us=NOW)
    _, secret = parse_token(token, "fpk")
    other = ("B" if secret[0] == "A" else "A") + secret[1:]
    with pytest.raises(InvalidCredentials) as wrong:
        auth.authenticate_key(f"fpk_{info.id}_{other}", now_us=NOW)
    with pytest.raises(InvalidCredentials) as unknown:
        auth.authenticate_key(f"fpk_{'0' * 16}_{secret}", now_us=NOW)
    # Neither tells a known id from an unknown one.
    assert wrong.value.to_dict() == unknown.value.to_dict()


def test_a_session_token_is_not_a_key(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["admin"], now_us=NOW)
    _, session_token, _ = auth.login("alice", PASSWORD, now_us=NOW)
    with pytest.raises(Unauthenticated):
        auth.authenticate_key(session_token, now_us=NOW)


def test_expiry_boundary(auth: AuthStore) -> None:
    expires_at_us = NOW + 90 * 86_400 * S
    info, token = auth.create_key("ci", ["viewer"], expires_at_us=expires_at_us, now_us=NOW)
    principal = auth.authenticate_key(token, now_us=expires_at_us - 1)
    assert principal.expires_at_us == expires_at_us
    assert info.state(expires_at_us - 1) == "active"
    with pytest.raises(KeyExpired):
        auth.authenticate_key(token, now_us=expires_at_us)
    assert info.state(expires_at_us) == "expired"


def test_revoke(auth: AuthStore) -> None:
    info, token = auth.create_key("ci", ["viewer"], now_us=NOW)
    revoked = auth.revoke_key(info.id, now_us=NOW + 10)
    assert revoked.revoked_at_us == NOW + 10
    assert revoked.state(NOW + 10) == "revoked"
    with pytest.raises(KeyRevoked):
        auth.authenticate_key(token, now_us=NOW + 10)
    # Revoking again keeps the first time.
    assert auth.revoke_key(info.id, now_us=NOW + 99).revoked_at_us == NOW + 10
    with pytest.raises(UnknownKey):
        auth.revoke_key("0123456789abcdef", now_us=NOW)


def test_rotation_grace(auth: AuthStore) -> None:
    expires_at_us = NOW + 30 * 86_400 * S
    old, old_token = auth.create_key("ci", ["cashier"], scopes=["ledger:read"],
                                     expires_at_us=expires_at_us, now_us=NOW)
    rotated_at_us = NOW + 100 * S
    new, new_token = auth.rotate_key(old.id, now_us=rotated_at_us, grace_s=3600)
    assert KEY_TOKEN.fullmatch(new_token)
    assert new.id != old.id
    assert (new.name, new.roles, new.scopes, new.expires_at_us, new.created_at_us) == (
        old.name, old.roles, old.scopes, old.expires_at_us, rotated_at_us)
    before = auth.key(old.id)
    grace_end_us = rotated_at_us + 3600 * S
    assert (before.replaced_by, before.expires_at_us) == (new.id, grace_end_us)
    assert isinstance(before.expires_at_us, int)
    assert auth.authenticate_key(old_token, now_us=grace_end_us - 1).id == old.id
    with pytest.raises(KeyExpired):
        auth.authenticate_key(old_token, now_us=grace_end_us)
    assert auth.authenticate_key(new_token, now_us=grace_end_us).id == new.id


def test_rotation_never_extends_the_old_key(auth: AuthStore) -> None:
    old, _ = auth.create_key("ci", ["viewer"], expires_at_us=NOW + 60 * S, now_us=NOW)
    auth.rotate_key(old.id, now_us=NOW, grace_s=3600)
    assert auth.key(old.id).expires_at_us == NOW + 60 * S


def test_rotation_without_grace_stops_the_old_key_at_once(auth: AuthStore) -> None:
    old, old_token = auth.create_key("ci", ["viewer"], now_us=NOW)
    new, _ = auth.rotate_key(old.id, now_us=NOW + S)
    assert new.expires_at_us is None
    with pytest.raises(KeyExpired):
        auth.authenticate_key(old_token, now_us=NOW + S)


def test_what_cannot_be_rotated(auth: AuthStore) -> None:
    with pytest.raises(UnknownKey):
        auth.rotate_key("0123456789abcdef", now_us=NOW)
    revoked, _ = auth.create_key("revoked", ["viewer"], now_us=NOW)
    auth.revoke_key(revoked.id, now_us=NOW)
    with pytest.raises(KeyRevoked):
        auth.rotate_key(revoked.id, now_us=NOW)
    rotated, _ = auth.create_key("rotated", ["viewer"], now_us=NOW)
    auth.rotate_key(rotated.id, now_us=NOW, grace_s=60)
    with pytest.raises(KeyAlreadyRotated):
        auth.rotate_key(rotated.id, now_us=NOW + S)
    expired, _ = auth.create_key("expired", ["viewer"], expires_at_us=NOW + S, now_us=NOW)
    with pytest.raises(KeyExpired):
        auth.rotate_key(expired.id, now_us=NOW + S)
    live, _ = auth.create_key("live", ["viewer"], now_us=NOW)
    for grace_s in (-1, 31 * 86_400):
        with pytest.raises(InvalidKeyExpiry):
            auth.rotate_key(live.id, now_us=NOW, grace_s=grace_s)
    # Nothing failed half-way: only the one successful rotation added a key.
    assert len(auth.keys()) == 5


def test_scopes_narrow_permissions(auth: AuthStore) -> None:
    _, token = auth.create_key("reader", ["admin"], scopes=["ledger:read", "pool:read"],
                               now_us=NOW)
    principal = auth.authenticate_key(token, now_us=NOW)
    assert principal.roles == frozenset({Role.ADMIN})
    assert principal.permissions == {Permission.LEDGER_READ, Permission.POOL_READ}
    # A scope never grants what the roles do not.
    _, token = auth.create_key("viewer", ["viewer"], scopes=["ledger:read", "keys:manage"],
                               now_us=NOW)
    assert auth.authenticate_key(token, now_us=NOW).permissions == {Permission.LEDGER_READ}


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_only_issued_tokens_authenticate(auth: AuthStore, data: st.DataObject) -> None:
    if not auth.keys():
        auth.create_key("ci", ["admin"], now_us=NOW)
    issued_id = auth.keys()[0].id
    text = data.draw(st.one_of(
        st.text(max_size=200),
        st.from_regex(r"fp[ks]_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True).map(
            lambda secret: f"fpk_{issued_id}_{secret}"),
    ))
    with pytest.raises(AuthenticationFailed):
        auth.authenticate_key(text, now_us=NOW)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate_session(text, now_us=NOW)


# --- users -----------------------------------------------------------------------------------


def test_add_and_list_users(auth: AuthStore) -> None:
    bob = auth.add_user("bob", PASSWORD, ["viewer"], now_us=NOW)
    alice = auth.add_user("alice@example.com", PASSWORD, ["approver", "admin"], now_us=NOW + 1)
    assert re.fullmatch(r"[0-9a-f]{16}", alice.id)
    assert alice.roles == ("admin", "approver")
    assert (alice.disabled, alice.created_at_us) == (False, NOW + 1)
    assert auth.users() == [alice, bob]
    assert auth.user("bob") == bob
    with pytest.raises(UnknownUser):
        auth.user("carol")
    with pytest.raises(UserExists):
        auth.add_user("bob", PASSWORD, ["viewer"], now_us=NOW)


@pytest.mark.parametrize("username", ["", "x" * 65, "with space", "ümlaut", "semi;colon"])
def test_usernames_are_checked(auth: AuthStore, username: str) -> None:
    with pytest.raises(InvalidUsername):
        auth.add_user(username, PASSWORD, ["viewer"], now_us=NOW)


@pytest.mark.parametrize("password", ["", "x" * 11, "x" * 1025])
def test_passwords_are_checked(auth: AuthStore, password: str) -> None:
    with pytest.raises(WeakPassword):
        auth.add_user("bob", password, ["viewer"], now_us=NOW)
    auth.add_user("bob", "x" * 12, ["viewer"], now_us=NOW)
    with pytest.raises(WeakPassword):
        auth.set_password("bob", password, now_us=NOW)


def test_set_roles(auth: AuthStore) -> None:
    auth.add_user("bob", PASSWORD, ["viewer"], now_us=NOW)
    _, token, _ = auth.login("bob", PASSWORD, now_us=NOW)
    assert auth.set_roles("bob", ["risk"], now_us=NOW).roles == ("risk",)
    # An open session has the new roles from its next request.
    principal = auth.authenticate_session(token, now_us=NOW)
    assert principal.roles == {Role.RISK}
    assert principal.permissions == ROLE_PERMISSIONS[Role.RISK]
    with pytest.raises(InvalidRoles):
        auth.set_roles("bob", [], now_us=NOW)
    with pytest.raises(UnknownUser):
        auth.set_roles("carol", ["viewer"], now_us=NOW)


# --- sessions --------------------------------------------------------------------------------


def test_login_and_authenticate_a_session(auth: AuthStore) -> None:
    user = auth.add_user("alice", PASSWORD, ["approver"], now_us=NOW)
    principal, token, csrf = auth.login("alice", PASSWORD, now_us=NOW)
    assert SESSION_TOKEN.fullmatch(token)
    assert principal.session_id is not None
    assert token.startswith(f"fps_{principal.session_id}_")
    assert (principal.kind, principal.id, principal.name) == ("user", user.id, "alice")
    assert principal.roles == {Role.APPROVER}
    assert principal.permissions == ROLE_PERMISSIONS[Role.APPROVER]
    assert principal.expires_at_us == NOW + 8 * 3600 * S
    assert principal.csrf_hash == hash_secret(csrf)
    assert auth.authenticate_session(token, now_us=NOW + S) == principal


def test_session_expiry_boundary(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    _, token, _ = auth.login("alice", PASSWORD, now_us=NOW, ttl_s=60)
    auth.authenticate_session(token, now_us=NOW + 60 * S - 1)
    with pytest.raises(SessionExpired):
        auth.authenticate_session(token, now_us=NOW + 60 * S)


@pytest.mark.parametrize("ttl_s", [0, 31 * 86_400])
def test_session_lifetime_is_bounded(auth: AuthStore, ttl_s: int) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    with pytest.raises(ValueError, match="ttl_s"):
        auth.login("alice", PASSWORD, now_us=NOW, ttl_s=ttl_s)


def test_a_wrong_session_secret_fails(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    principal, token, _ = auth.login("alice", PASSWORD, now_us=NOW)
    _, secret = parse_token(token, "fps")
    other = ("B" if secret[0] == "A" else "A") + secret[1:]
    with pytest.raises(InvalidCredentials):
        auth.authenticate_session(f"fps_{principal.session_id}_{other}", now_us=NOW)
    with pytest.raises(Unauthenticated):
        auth.authenticate_session(token.replace("fps_", "fpk_"), now_us=NOW)


def test_unknown_user_and_wrong_password_fail_alike(
    auth: AuthStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    dummy_verifications: list[str] = []
    real_dummy = verify_dummy_password

    def counting_dummy(password: str) -> None:
        dummy_verifications.append(password)
        real_dummy(password)

    monkeypatch.setattr(store_module, "verify_dummy_password", counting_dummy)
    with pytest.raises(InvalidCredentials) as wrong_password:
        auth.login("alice", "not the password at all", now_us=NOW)
    assert dummy_verifications == []
    with pytest.raises(InvalidCredentials) as unknown_user:
        auth.login("mallory", "not the password at all", now_us=NOW)
    # The unknown user costs the same argon2 verification a known one does.
    assert dummy_verifications == ["not the password at all"]
    assert wrong_password.value.to_dict() == unknown_user.value.to_dict()


def test_login_does_not_rehash_todays_hashes(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    stored = password_hash_of(auth, "alice")
    assert stored.startswith("$argon2id$")
    assert not password_needs_rehash(stored)
    auth.login("alice", PASSWORD, now_us=NOW)
    assert password_hash_of(auth, "alice") == stored


def test_login_rehashes_an_old_hash(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with auth.db.transaction() as tx:
        tx.execute("UPDATE users SET password_hash = ? WHERE username = ?", (weak, "alice"))
    assert password_needs_rehash(weak)
    auth.login("alice", PASSWORD, now_us=NOW)
    rehashed = password_hash_of(auth, "alice")
    assert rehashed != weak
    assert not password_needs_rehash(rehashed)
    auth.login("alice", PASSWORD, now_us=NOW)


def test_set_password_ends_sessions(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    _, token, _ = auth.login("alice", PASSWORD, now_us=NOW)
    auth.set_password("alice", "a brand new passphrase", now_us=NOW)
    with pytest.raises(InvalidCredentials):
        auth.authenticate_session(token, now_us=NOW)
    with pytest.raises(InvalidCredentials):
        auth.login("alice", PASSWORD, now_us=NOW)
    auth.login("alice", "a brand new passphrase", now_us=NOW)
    with pytest.raises(UnknownUser):
        auth.set_password("carol", "a brand new passphrase", now_us=NOW)


def test_disabled_user(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["admin"], now_us=NOW)
    _, token, _ = auth.login("alice", PASSWORD, now_us=NOW)
    disabled = auth.disable_user("alice", now_us=NOW + S)
    assert disabled.disabled
    assert auth.disable_user("alice", now_us=NOW + 2 * S) == disabled
    with pytest.raises(UserDisabled):
        auth.authenticate_session(token, now_us=NOW + 2 * S)
    with pytest.raises(UserDisabled):
        auth.login("alice", PASSWORD, now_us=NOW + 2 * S)
    # Without the password, a disabled user is no different from a wrong password.
    with pytest.raises(InvalidCredentials):
        auth.login("alice", "not the password at all", now_us=NOW + 2 * S)
    with pytest.raises(UnknownUser):
        auth.disable_user("carol", now_us=NOW)


def test_check_csrf(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    principal, token, csrf = auth.login("alice", PASSWORD, now_us=NOW)
    assert auth.check_csrf(principal, csrf)
    assert auth.check_csrf(auth.authenticate_session(token, now_us=NOW), csrf)
    for wrong in ("", None, csrf[:-1], csrf + "x", "x" * 10_000):
        assert not auth.check_csrf(principal, wrong)
    _, _, other_csrf = auth.login("alice", PASSWORD, now_us=NOW)
    assert not auth.check_csrf(principal, other_csrf)
    _, key_token = auth.create_key("ci", ["viewer"], now_us=NOW)
    assert not auth.check_csrf(auth.authenticate_key(key_token, now_us=NOW), csrf)


def test_logout(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    principal, token, _ = auth.login("alice", PASSWORD, now_us=NOW)
    _, other, _ = auth.login("alice", PASSWORD, now_us=NOW)
    assert principal.session_id is not None
    auth.logout(principal.session_id, now_us=NOW + S)
    auth.logout(principal.session_id, now_us=NOW + 2 * S)
    auth.logout("0123456789abcdef", now_us=NOW)
    with pytest.raises(InvalidCredentials):
        auth.authenticate_session(token, now_us=NOW + S)
    # Only that session ended.
    assert auth.authenticate_session(other, now_us=NOW + S).name == "alice"


def test_login_clears_a_users_ended_sessions(auth: AuthStore) -> None:
    auth.add_user("alice", PASSWORD, ["viewer"], now_us=NOW)
    ended, _, _ = auth.login("alice", PASSWORD, now_us=NOW)
    assert ended.session_id is not None
    auth.logout(ended.session_id, now_us=NOW)
    auth.login("alice", PASSWORD, now_us=NOW, ttl_s=1)
    auth.login("alice", PASSWORD, now_us=NOW + 2 * S)
    assert len(auth._rows("SELECT id FROM user_sessions")) == 1


# --- the trail of changes --------------------------------------------------------------------

BOB = Actor("key", "b0b", "ops-bot", ("admin",), key_id="b0b", request_id="req-2")
ROOT = cli_actor("root")


def trail(auth: AuthStore) -> list[tuple[str, str, str, Actor | None]]:
    """(action, target kind, target name, actor) of every change, oldest first."""
    return [(c.action, c.target_kind, c.target_name, c.actor)
            for c in reversed(auth.changes(limit=1_000))]


def test_every_key_and_user_change_records_its_actor(auth: AuthStore) -> None:
    key, token = auth.create_key("payroll", ["cashier"], scopes=["ledger:read"], now_us=NOW,
                                 actor=ALICE)
    new, _ = auth.rotate_key(key.id, now_us=NOW + S, grace_s=60, actor=BOB)
    auth.revoke_key(new.id, now_us=NOW + 2 * S, actor=ROOT)
    user = auth.add_user("carol", PASSWORD, ["viewer"], now_us=NOW + 3 * S, actor=ALICE)
    auth.set_roles("carol", ["risk", "viewer"], now_us=NOW + 4 * S, actor=BOB)
    auth.login("carol", PASSWORD, now_us=NOW + 4 * S)
    auth.set_password("carol", "a brand new passphrase", now_us=NOW + 5 * S, actor=ROOT)
    auth.disable_user("carol", now_us=NOW + 6 * S, actor=ALICE)
    assert trail(auth) == [
        ("key.created", "key", "payroll", ALICE),
        ("key.rotated", "key", "payroll", BOB),
        ("key.revoked", "key", "payroll", ROOT),
        ("user.created", "user", "carol", ALICE),
        ("user.roles_changed", "user", "carol", BOB),
        ("user.password_changed", "user", "carol", ROOT),
        ("user.disabled", "user", "carol", ALICE),
    ]
    changes = list(reversed(auth.changes()))
    assert [c.at_us for c in changes] == [NOW + i * S for i in range(7)]
    assert [c.target_id for c in changes] == [key.id, key.id, new.id] + [user.id] * 4
    assert changes[0].details == {"roles": ["cashier"], "scopes": ["ledger:read"],
                                  "expires_at_us": None}
    assert changes[1].details == {"replaced_by": new.id, "grace_s": 60,
                                  "expires_at_us": NOW + S + 60 * S}
    assert changes[4].details == {"roles_before": ["viewer"], "roles": ["risk", "viewer"]}
    assert changes[5].details == {"sessions_ended": 1}
    assert changes[6].details == {"sessions_revoked": 0}
    # The ids follow the order of the changes; the actor comes back whole.
    assert [c.id for c in changes] == sorted(c.id for c in changes)
    assert changes[0] == AuthChange(changes[0].id, NOW, "key.created", "key", key.id,
                                    "payroll", ALICE, changes[0].details)
    # Who created each key and user is on its row too: a rotated key by who rotated it.
    assert (auth.key(key.id).creator, auth.key(new.id).creator) == (ALICE, BOB)
    assert auth.key(new.id).created_by == "key:ops-bot"
    assert auth.user("carol").creator == ALICE
    # Never a secret or a password.
    _, secret = parse_token(token, "fpk")
    stored = str(auth.db.rows("SELECT * FROM auth_changes"))
    assert secret not in stored
    assert PASSWORD not in stored
    assert "a brand new passphrase" not in stored


def test_what_changes_nothing_records_nothing(auth: AuthStore) -> None:
    key, _ = auth.create_key("ci", ["viewer"], now_us=NOW)
    auth.add_user("carol", PASSWORD, ["viewer"], now_us=NOW)
    auth.revoke_key(key.id, now_us=NOW + S, actor=ALICE)
    auth.disable_user("carol", now_us=NOW + S, actor=ALICE)
    before = trail(auth)
    assert [action for action, _, _, _ in before] == [
        "key.created", "user.created", "key.revoked", "user.disabled"]
    assert before[0][3] == SYSTEM  # set-up code that names no actor
    auth.revoke_key(key.id, now_us=NOW + 2 * S, actor=BOB)  # already revoked
    auth.disable_user("carol", now_us=NOW + 2 * S, actor=BOB)  # already disabled
    # Refused changes: nothing changed, nothing recorded.
    for refused in (lambda: auth.revoke_key("0123456789abcdef", now_us=NOW, actor=BOB),
                    lambda: auth.rotate_key(key.id, now_us=NOW, actor=BOB),
                    lambda: auth.set_roles("carol", ["boss"], now_us=NOW, actor=BOB),
                    lambda: auth.set_roles("nobody", ["viewer"], now_us=NOW, actor=BOB),
                    lambda: auth.set_password("carol", "short", now_us=NOW, actor=BOB),
                    lambda: auth.add_user("carol", PASSWORD, ["viewer"], now_us=NOW,
                                          actor=BOB),
                    lambda: auth.create_key("ci", [], now_us=NOW, actor=BOB)):
        with pytest.raises(FundpoolError):
            refused()
    assert trail(auth) == before


def test_a_change_and_its_record_are_one_transaction(auth: AuthStore) -> None:
    """Without the trail's table the change cannot be recorded: it is not made either."""
    auth.add_user("carol", PASSWORD, ["viewer"], now_us=NOW)
    keys_before = auth.keys()
    with auth.db.transaction() as tx:
        tx.execute("ALTER TABLE auth_changes RENAME TO auth_changes_away")
    try:
        # The driver's own error: SQLite's "no such table", PostgreSQL's "does not exist".
        with pytest.raises(Exception, match="auth_changes"):
            auth.create_key("ci", ["viewer"], now_us=NOW, actor=ALICE)
        with pytest.raises(Exception, match="auth_changes"):
            auth.set_roles("carol", ["admin"], now_us=NOW, actor=ALICE)
    finally:
        with auth.db.transaction() as tx:
            tx.execute("ALTER TABLE auth_changes_away RENAME TO auth_changes")
    assert auth.keys() == keys_before
    assert auth.user("carol").roles == ("viewer",)


def test_changes_page_newest_first_and_filter(auth: AuthStore) -> None:
    keys = [auth.create_key(f"k{i}", ["viewer"], now_us=NOW + i, actor=ALICE)[0]
            for i in range(5)]
    user = auth.add_user("carol", PASSWORD, ["viewer"], now_us=NOW + 10, actor=BOB)
    first = auth.changes(limit=2)
    assert [c.target_name for c in first] == ["carol", "k4"]
    second = auth.changes(limit=2, before=first[-1].id)
    assert [c.target_name for c in second] == ["k3", "k2"]
    assert [c.target_name for c in auth.changes(target_kind="key", before=second[-1].id)
            ] == ["k1", "k0"]
    assert [c.target_id for c in auth.changes(target_kind="user")] == [user.id]
    assert [c.action for c in auth.changes(target_kind="key", target_id=keys[3].id)] == [
        "key.created"]
    assert auth.changes(target_kind="user", target_id=keys[3].id) == []


def test_rows_from_before_actors_were_kept_read_as_unknown(auth: AuthStore) -> None:
    """A key and a user written as the code before this change wrote them: no creator."""
    with auth.db.transaction() as tx:
        tx.execute("INSERT INTO api_keys (id, name, secret_hash, roles, created_at_us, "
                   "created_by) VALUES (?, ?, ?, ?, ?, ?)",
                   ("00000000000000aa", "old", "0" * 64, "viewer", NOW, "cli"))
        tx.execute("INSERT INTO users (id, username, password_hash, roles, disabled, "
                   "created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
                   ("00000000000000bb", "olduser", "x", "viewer", False, NOW))
    old = auth.key("00000000000000aa")
    assert (old.created_by, old.creator) == ("cli", None)
    assert auth.user("olduser").creator is None
    auth.revoke_key(old.id, now_us=NOW + S, actor=ALICE)
    assert trail(auth) == [("key.revoked", "key", "old", ALICE)]
