"""Every route of the OpenAPI document, called by every role and by nobody: each role gets
exactly the permissions the roles table gives it, and an anonymous caller gets 401.

The routes that take raw postings also name `x-adjustment-permission`: touching an account of
a pool or a merchant needs it too (and a reason), and each role gets exactly what the table
gives it there as well.

Then the bad input every route must refuse with a 4xx problem and no change: malformed JSON,
wrong types, unknown fields, bodies beyond the bound, bad cursors, expired or revoked keys,
a role calling what it may not, an adjustment without its permission or its reason."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fundpool.auth.roles import ROLE_PERMISSIONS, Permission, Role
from fundpool.auth.secrets import KEY_PREFIX, parse_token
from fundpool.server.problems import STATUS_BY_CODE
from fundpool.server.v1.ledger import ADJUSTMENT_PERMISSION_KEY
from fundpool.server.v1.security import AUTHENTICATED, PERMISSION_KEY, PUBLIC
from tests.server.api_app import ApiApp, api_app

PROBLEM = "application/problem+json"
# The codes a route answers with 403 for what it checks itself, past the gate.
DOMAIN_403 = {code for code, status in STATUS_BY_CODE.items() if status == 403} - {"forbidden"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ApiApp:
    return api_app(tmp_path_factory.mktemp("api") / "data")


@pytest.fixture(scope="module")
def client(served: ApiApp) -> Any:
    with TestClient(served.app) as c:
        yield c


def operations(app: Any) -> list[tuple[str, str, str]]:
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1"):
                found.append((method.upper(), path, operation[PERMISSION_KEY]))
    return found


def adjusting_operations(app: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(method, path) -> (the route's permission, the one its adjustments need too)."""
    found = {}
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if ADJUSTMENT_PERMISSION_KEY in operation:
                found[(method.upper(), path)] = (operation[PERMISSION_KEY],
                                                 operation[ADJUSTMENT_PERMISSION_KEY])
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nothing-here", path)


def call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.request(method, concrete(path), **kwargs)


def test_every_v1_route_declares_one_known_permission(served: ApiApp) -> None:
    found = operations(served.app)
    assert len(found) >= 25
    known = {str(p) for p in Permission} | {PUBLIC, AUTHENTICATED}
    for method, path, permission in found:
        assert permission in known, (method, path, permission)
    # Every permission guards at least one route, alone or as what its adjustments need
    # besides: none is dead weight in the table.
    used = {permission for _, _, permission in found}
    used |= {also for _, also in adjusting_operations(served.app).values()}
    assert {str(p) for p in Permission} <= used, {str(p) for p in Permission} - used


def test_anonymous_callers_get_401_everywhere_but_log_in(served: ApiApp, client: Any) -> None:
    for method, path, permission in operations(served.app):
        response = call(client, method, path, {})
        if permission == PUBLIC:
            assert response.status_code != 401, (method, path)
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["code"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", [str(r) for r in Role])
def test_each_role_gets_exactly_its_permissions(served: ApiApp, client: Any, role: str) -> None:
    granted = {str(p) for p in ROLE_PERMISSIONS[Role(role)]} | {PUBLIC, AUTHENTICATED}
    for method, path, permission in operations(served.app):
        if method == "DELETE" and path == "/v1/sessions/current":
            continue  # ends nothing for a key, and is allowed to all: checked below
        response = call(client, method, path, served.headers(role))
        if permission in granted:
            # Past the gate. A route may still answer 403 for what it checks itself (an
            # unknown signing key, a TOTP code, self_grant...), never the gate's `forbidden`.
            assert response.status_code != 401, (role, method, path, response.text)
            if response.status_code == 403:
                assert response.json()["code"] != "forbidden", (role, method, path,
                                                                response.text)
                assert response.json()["code"] in DOMAIN_403, (role, method, path,
                                                               response.text)
            assert response.status_code < 500, (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            body = response.json()
            assert body["code"] == "forbidden"
            assert body["facts"]["permission"] == permission


POOL_USD = "pool:main:usd:bank-a:available"
TO_POOL = {"source": "world:bank-a", "destination": POOL_USD, "asset": "USD", "amount": "1.00"}
RAW_POSTING_ROUTES = {
    ("POST", "/v1/ledger/transactions"), ("POST", "/v1/ledger/transactions/batch"),
    ("POST", "/v1/ledger/transactions/{entry_id}/reversal"), ("POST", "/v1/ledger/pendings"),
    ("POST", "/v1/ledger/pendings/{pending_id}/post"),
    ("POST", "/v1/ledger/pendings/{pending_id}/void"),
}


def with_reason(body: dict[str, Any], reason: str | None) -> dict[str, Any]:
    if reason is None:
        return body
    if "transfers" in body:
        return {"transfers": [{**t, "reason": reason} for t in body["transfers"]]}
    return {**body, "reason": reason}


def raw_posting_on_the_pool(client: Any, served: ApiApp, path: str) -> tuple[str, dict[str, Any]]:
    """A request to `path` that moves the pool's money: for a post, void or reversal, of a
    reservation or entry an admin made just before (with a reason)."""
    admin = served.headers("admin")
    if "{pending_id}" in path:
        made = client.post("/v1/ledger/pendings", headers=admin, json={
            "posting": TO_POOL, "timeout_s": 600, "reason": "set-up: a reservation to finish"})
        assert made.status_code == 201, made.text
        return path.replace("{pending_id}", made.json()["pending_id"]), {}
    if "{entry_id}" in path:
        made = client.post("/v1/ledger/transactions", headers=admin, json={
            "postings": [TO_POOL], "reason": "set-up: an entry to reverse"})
        assert made.status_code == 201, made.text
        return path.replace("{entry_id}", made.json()["id"]), {}
    if path.endswith("/batch"):
        return path, {"transfers": [{"postings": [TO_POOL]}]}
    if path.endswith("/pendings"):
        return path, {"posting": TO_POOL, "timeout_s": 600}
    return path, {"postings": [TO_POOL]}


def test_the_routes_that_take_raw_postings_name_the_adjustment_permission(
        served: ApiApp) -> None:
    found = adjusting_operations(served.app)
    assert set(found) == RAW_POSTING_ROUTES
    assert {also for _, also in found.values()} == {str(Permission.LEDGER_ADJUST)}


@pytest.mark.parametrize("role", [str(r) for r in Role])
def test_each_role_moves_the_pools_money_only_as_the_table_says(
        served: ApiApp, client: Any, role: str) -> None:
    """The role walk for adjustments: every route that takes raw postings, called on an
    account of the pool by each role; refusals change nothing."""
    granted = ROLE_PERMISSIONS[Role(role)]
    for (method, path), (permission, also) in sorted(adjusting_operations(served.app).items()):
        url, body = raw_posting_on_the_pool(client, served, path)
        before = head(client, served)
        unexplained = client.request(method, url, headers=served.headers(role), json=body)
        if Permission(permission) in granted and Permission(also) in granted:
            assert_problem(unexplained, 400, "adjustment_reason_required")
        assert head(client, served) == before, (role, path)
        answer = client.request(method, url, headers=served.headers(role),
                                json=with_reason(body, "a correction the bank asked for"))
        if Permission(permission) not in granted:
            assert_problem(unexplained, 403, "forbidden")
            assert_problem(answer, 403, "forbidden")
        elif Permission(also) not in granted:
            for refused in (unexplained, answer):
                facts = assert_problem(refused, 403, "adjustment_permission_required")["facts"]
                assert facts["permission"] == also
                assert POOL_USD in facts["accounts"]
        else:
            assert answer.status_code in (200, 201), (role, path, answer.text)
            if path.endswith("/batch"):
                assert answer.json()["applied"] == 1
            continue
        assert head(client, served) == before, (role, path)


def test_a_role_table_that_separates_duties() -> None:
    cashier, approver = ROLE_PERMISSIONS[Role.CASHIER], ROLE_PERMISSIONS[Role.APPROVER]
    assert Permission.PAYMENTS_APPROVE not in cashier
    assert Permission.PAYMENTS_CREATE not in approver
    # A cashier's raw postings cannot reach the pool's money: only its services move it.
    assert [r for r in Role if Permission.LEDGER_ADJUST in ROLE_PERMISSIONS[r]] == [Role.ADMIN]
    auditor = ROLE_PERMISSIONS[Role.AUDITOR]
    assert not any(p in auditor for p in (Permission.LEDGER_WRITE, Permission.PAYMENTS_CREATE,
                                          Permission.KEYS_MANAGE))
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)


# --- bad input -------------------------------------------------------------------------------


def head(client: Any, served: ApiApp) -> tuple[int, dict[str, Any]]:
    entries = client.get("/v1/ledger/transactions?limit=1", headers=served.headers()).json()
    seq = entries["data"][0]["seq"] if entries["data"] else 0
    balances = client.get("/v1/ledger/accounts/pool:main:usd:bank-a:available/balances",
                          headers=served.headers()).json()
    return seq, balances


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(code)
    return body


DEPOSIT = {"postings": [{"source": "world:bank-a", "destination":
                         "pool:main:usd:bank-a:available", "asset": "USD", "amount": "5.00"}]}
# A customer's account: the callers' own, moved with ledger:write alone.
CUSTOMER = "customer:li:usd"
TO_CUSTOMER = {"postings": [{"source": "world:bank-a", "destination": CUSTOMER,
                             "asset": "USD", "amount": "5.00"}]}


@pytest.fixture(scope="module", autouse=True)
def customer_account(served: ApiApp, client: Any) -> None:
    opened = client.post("/v1/ledger/accounts", headers=served.headers("cashier"),
                         json={"address": CUSTOMER, "asset": "USD"})
    assert opened.status_code == 201, opened.text


def test_bad_bodies_are_4xx_problems_and_change_nothing(served: ApiApp, client: Any) -> None:
    before = head(client, served)
    url = "/v1/ledger/transactions"
    h = {**served.headers("cashier"), "content-type": "application/json"}
    assert_problem(client.post(url, headers=h, content=b'{"postings": ['), 400, "malformed_json")
    wrong_type = {"postings": [{**DEPOSIT["postings"][0], "amount": 5}]}
    assert_problem(client.post(url, headers=h, json=wrong_type), 422, "invalid_request")
    unknown_field = {**DEPOSIT, "memo": "x"}
    body = assert_problem(client.post(url, headers=h, json=unknown_field), 422,
                          "invalid_request")
    assert any(e["type"] == "extra_forbidden" for e in body["facts"]["errors"])
    too_precise = {"postings": [{**DEPOSIT["postings"][0], "amount": "5.001"}]}
    assert_problem(client.post(url, headers=h, json=too_precise), 400, "too_many_decimals")
    # One good posting and one bad one: the transfer applies whole or not at all (an admin's
    # adjustment: a cashier may not touch the pool's accounts at all).
    half = {"postings": [DEPOSIT["postings"][0],
                         {"source": "pool:main:usd:bank-a:fees", "destination": "world:bank-a",
                          "asset": "USD", "amount": "999999.00"}],
            "reason": "move the fees out"}
    assert_problem(client.post(url, headers=served.headers("admin"), json=half), 409,
                   "insufficient_funds")
    # A raw posting on the pool's money: a cashier may not, an admin not without a reason.
    refused = assert_problem(client.post(url, headers=h, json=DEPOSIT), 403,
                             "adjustment_permission_required")
    assert refused["facts"]["accounts"] == ["pool:main:usd:bank-a:available"]
    assert_problem(client.post(url, headers=h, json={**DEPOSIT, "reason": "because"}), 403,
                   "adjustment_permission_required")
    admin = served.headers("admin")
    assert_problem(client.post(url, headers=admin, json=DEPOSIT), 400,
                   "adjustment_reason_required")
    assert_problem(client.post(url, headers=admin, json={**DEPOSIT, "reason": "  \n "}), 400,
                   "adjustment_reason_required")
    too_long = assert_problem(client.post(url, headers=admin, json={**DEPOSIT,
                                                                   "reason": "x" * 501}),
                              422, "invalid_request")
    assert too_long["facts"]["errors"][0]["loc"][-1] == "reason"
    # The recorder's keys are not the caller's to set: no entry claims to be an adjustment
    # it is not, nor hides its actor behind one given.
    assert_problem(client.post(url, headers=admin, json={
        **DEPOSIT, "reason": "ok", "metadata": {"actor": "somebody else"}}), 400,
        "invalid_metadata")
    assert_problem(client.post(url, headers=h, json={
        "postings": [{**DEPOSIT["postings"][0], "destination": CUSTOMER}],
        "metadata": {"kind": "adjustment"}}), 400, "invalid_metadata")
    for route, body in (("/v1/ledger/pendings", {"posting": DEPOSIT["postings"][0]}),
                        ("/v1/ledger/transactions/batch", {"transfers": [DEPOSIT]})):
        assert_problem(client.post(route, headers=h, json=body), 403,
                       "adjustment_permission_required")
        assert_problem(client.post(route, headers=admin, json=body), 400,
                       "adjustment_reason_required")
    huge = b'{"postings": [], "metadata": {"k": "' + b"x" * 2_000_000 + b'"}}'
    assert_problem(client.post(url, headers=h, content=huge), 413, "payload_too_large")
    assert_problem(client.post(url, headers={**h, "Idempotency-Key": "bad key"},
                               json=DEPOSIT), 400, "invalid_idempotency_key")
    assert head(client, served) == before


def test_bad_cursors_are_400(served: ApiApp, client: Any) -> None:
    h = served.headers("viewer")
    for cursor in ("not-a-cursor", "eyJ9", "e30"):
        assert_problem(client.get(f"/v1/ledger/accounts?cursor={cursor}", headers=h), 400,
                       "invalid_cursor")
    page = client.get("/v1/ledger/accounts?limit=2", headers=h).json()
    assert page["next_cursor"]
    # A cursor is only good for the list and filters that made it.
    assert_problem(client.get(f"/v1/ledger/accounts?limit=2&prefix=world&cursor="
                              f"{page['next_cursor']}", headers=h), 400, "invalid_cursor")
    assert_problem(client.get(f"/v1/ledger/transactions?cursor={page['next_cursor']}",
                              headers=h), 400, "invalid_cursor")


def test_expired_revoked_and_rotated_keys(served: ApiApp, client: Any) -> None:
    api = served.app.state.api
    now = api.clock.now_us()
    _, expired = api.auth.create_key("expired", [Role.VIEWER], now_us=now - 10_000_000,
                                     expires_at_us=now - 1)
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"}), 401,
                   "key_expired")
    info, revoked = api.auth.create_key("revoked", [Role.VIEWER], now_us=now)
    api.auth.revoke_key(info.id, now_us=now)
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {revoked}"}), 401,
                   "key_revoked")
    forged = "fpk_" + "0" * 16 + "_" + "x" * 43
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401,
                   "invalid_credentials")
    assert_problem(client.get("/v1/me", headers={"Authorization": "Bearer fpk_00_nope"}), 401,
                   "unauthenticated")
    assert_problem(client.get("/v1/me", headers={"Authorization": "Basic abc"}), 401,
                   "unauthenticated")
    # Rotation over the API: the new secret works at once, the old one no more (no grace).
    created = client.post("/v1/keys", headers=served.headers("admin"),
                          json={"name": "rotating", "roles": ["viewer"]})
    assert created.status_code == 201, created.text
    old = created.json()["token"]
    rotated = client.post(f"/v1/keys/{created.json()['key']['id']}/rotate",
                          headers=served.headers("admin"), json={"grace_s": 0})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["token"]
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {old}"}), 401,
                   "key_expired")


def test_keys_are_only_shown_once_and_stored_hashed(served: ApiApp, client: Any) -> None:
    created = client.post("/v1/keys", headers=served.headers("admin"),
                          json={"name": "shown-once", "roles": ["cashier"],
                                "scopes": ["ledger:read"]})
    token = created.json()["token"]
    listed = client.get("/v1/keys", headers=served.headers("auditor"))
    assert listed.status_code == 200
    assert token not in listed.text
    database = Path(served.app.state.api.store.path)
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert created.json()["key"]["id"].encode() in stored
    # The whole secret (a url-safe base64 text may itself hold "_": split("_")[-1] took a
    # fragment of it, two characters at times, which a database file holds by chance).
    assert parse_token(token, KEY_PREFIX)[1].encode() not in stored
    # Scopes narrow the roles: this cashier key may read the ledger and nothing more.
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/ledger/assets", headers=h).status_code == 200
    assert_problem(client.post("/v1/ledger/transactions", headers=h, json=DEPOSIT), 403,
                   "forbidden")


def test_sessions_cookie_and_csrf(served: ApiApp, client: Any) -> None:
    api = served.app.state.api
    api.auth.add_user("cashier.li", "correct horse battery", [Role.CASHIER],
                      now_us=api.clock.now_us())
    assert_problem(client.post("/v1/sessions", json={"username": "cashier.li",
                                                     "password": "wrong password!!"}),
                   401, "invalid_credentials")
    with TestClient(served.app) as browser:
        login = browser.post("/v1/sessions", json={"username": "cashier.li",
                                                   "password": "correct horse battery"})
        assert login.status_code == 201, login.text
        assert "httponly" in login.headers["set-cookie"].lower()
        csrf = login.json()["csrf_token"]
        assert browser.get("/v1/me").json()["name"] == "cashier.li"
        # A cookie alone does not move money: the CSRF token must come with it.
        assert_problem(browser.post("/v1/ledger/transactions", json=TO_CUSTOMER), 403,
                       "csrf_failed")
        done = browser.post("/v1/ledger/transactions", json=TO_CUSTOMER,
                            headers={"X-CSRF-Token": csrf})
        assert done.status_code == 201, done.text
        assert browser.delete("/v1/sessions/current", headers={"X-CSRF-Token": csrf}
                              ).status_code == 204
        browser.cookies.set("fundpool_session", login.json()["token"])
        assert_problem(browser.get("/v1/me"), 401, "invalid_credentials")


def test_rate_limit_per_key(tmp_path: Path) -> None:
    # A token every 1,000 s: none comes back while the test runs, however slowly a busy
    # machine answers, so the burst alone decides (at 1/s, a request taking a second would).
    limited = api_app(tmp_path / "data", rate_limit_per_s=0.001, rate_limit_burst=3)
    with TestClient(limited.app) as c:
        answers = [c.get("/v1/me", headers=limited.headers("viewer")).status_code
                   for _ in range(5)]
        assert answers == [200, 200, 200, 429, 429]
        refused = c.get("/v1/me", headers=limited.headers("viewer"))
        body = assert_problem(refused, 429, "too_many_requests")
        assert int(refused.headers["retry-after"]) >= 1
        assert body["facts"]["retry_after_s"] >= 1
        # Another key has a bucket of its own.
        assert c.get("/v1/me", headers=limited.headers("auditor")).status_code == 200


def test_request_ids_are_kept_or_made(served: ApiApp, client: Any) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])


def test_docs_list_every_route(served: ApiApp) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    for method, path, permission in operations(served.app):
        assert f"| {method} | `{path}` | `{permission}` |" in text, (method, path)


def test_every_post_keeps_the_idempotency_semantics(served: ApiApp, client: Any) -> None:
    h = {**served.headers("admin"), "Idempotency-Key": "asset-xau"}
    first = client.post("/v1/ledger/assets", headers=h,
                        json={"code": "XAU", "scale": 3, "kind": "crypto"})
    assert first.status_code == 201, first.text
    again = client.post("/v1/ledger/assets", headers=h,
                        json={"code": "XAU", "scale": 3, "kind": "crypto"})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = client.post("/v1/ledger/assets", headers=h,
                        json={"code": "XAG", "scale": 3, "kind": "crypto"})
    assert_problem(other, 409, "idempotency_conflict")
    codes = [a["code"] for a in client.get("/v1/ledger/assets", headers=h).json()]
    assert "XAU" in codes
    assert "XAG" not in codes


def test_a_new_keys_secret_is_never_kept_for_replays(served: ApiApp, client: Any) -> None:
    h = {**served.headers("admin"), "Idempotency-Key": "new-key-1"}
    body = {"name": "replayed", "roles": ["viewer"]}
    first = client.post("/v1/keys", headers=h, json=body)
    assert first.status_code == 201
    token = first.json()["token"]
    again = client.post("/v1/keys", headers=h, json=body)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["token"] is None
    assert again.json()["key"]["id"] == first.json()["key"]["id"]
    database = Path(served.app.state.api.store.path)
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert first.json()["key"]["id"].encode() in stored  # the key is there, its secret not
    # The whole secret (a url-safe base64 text may itself hold "_": split("_")[-1] took a
    # fragment of it, two characters at times, which a database file holds by chance).
    assert parse_token(token, KEY_PREFIX)[1].encode() not in stored


def test_old_kept_answers_are_pruned_but_payout_files_stay(tmp_path: Path) -> None:
    from fundpool.stores.idempotency_sql import IdempotencyStore

    kept = IdempotencyStore(f"sqlite:///{tmp_path / 'kept.sqlite3'}")
    for caller, at in (("key:a", 1_000), ("key:a-late", 5_000), ("payout-file:main", 1_000)):
        assert kept.claim(caller, "k", "h", at) is None
        kept.finish(caller, "k", 200, b"{}")
    assert kept.claim("key:running", "k", "h", 1_000) is None  # still running: never pruned
    assert kept.prune(2_000) == 1
    assert kept.find("key:a", "k") is None
    assert kept.find("key:a-late", "k") is not None
    assert kept.find("payout-file:main", "k") is not None
    assert kept.find("key:running", "k") is not None


# --- who changed keys and users --------------------------------------------------------------


def test_key_and_user_changes_name_their_actor_and_request(served: ApiApp, client: Any) -> None:
    """An admin key creates, rotates and revokes a key and adds and disables a user: each
    change names the admin (its key, its roles) and the X-Request-ID of the call."""
    admin = served.headers("admin")
    me = client.get("/v1/me", headers=admin).json()

    def post(path: str, request_id: str, body: dict[str, Any] | None = None) -> Any:
        response = client.post(path, headers={**admin, "X-Request-ID": request_id},
                               json=body if body is not None else {})
        assert response.status_code in (200, 201), response.text
        return response.json()

    created = post("/v1/keys", "req-create-key", {"name": "audited", "roles": ["viewer"]})
    key = created["key"]
    assert key["created_by"] == {"kind": "key", "id": me["id"], "name": me["name"],
                                 "roles": ["admin"], "session_id": None, "key_id": me["id"],
                                 "request_id": "req-create-key"}
    rotated = post(f"/v1/keys/{key['id']}/rotate", "req-rotate", {"grace_s": 0})["key"]
    assert rotated["created_by"]["request_id"] == "req-rotate"
    post(f"/v1/keys/{rotated['id']}/revoke", "req-revoke")
    user = post("/v1/users", "req-add-user", {"username": "audited.user",
                                              "password": "audited passphrase",
                                              "roles": ["viewer"]})
    assert user["created_by"]["request_id"] == "req-add-user"
    post("/v1/users/audited.user/disable", "req-disable")

    # The auditor reads the trail (keys:read); newest first.
    changes = client.get("/v1/auth/changes", headers=served.headers("auditor"),
                         params={"limit": 5})
    assert changes.status_code == 200, changes.text
    page = changes.json()["data"]
    assert [(c["action"], c["target_name"], c["request_id"]) for c in page] == [
        ("user.disabled", "audited.user", "req-disable"),
        ("user.created", "audited.user", "req-add-user"),
        ("key.revoked", "audited", "req-revoke"),
        ("key.rotated", "audited", "req-rotate"),
        ("key.created", "audited", "req-create-key"),
    ]
    for change in page:
        assert (change["actor"]["kind"], change["actor"]["id"], change["actor"]["roles"]) == (
            "key", me["id"], ["admin"])
        assert change["actor"]["request_id"] == change["request_id"]
    assert page[3]["details"]["replaced_by"] == rotated["id"]
    assert page[4]["target_id"] == key["id"]
    assert "audited passphrase" not in changes.text

    # Filters and pages: one key's changes, two at a time.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"target_kind": "key", "target_id": key["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        answer = client.get("/v1/auth/changes", headers=admin, params=params).json()
        seen += [c["action"] for c in answer["data"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == ["key.rotated", "key.created"]
    assert_problem(client.get("/v1/auth/changes", headers=admin,
                              params={"target_kind": "user", "cursor": answer_cursor(
                                  client, admin)}), 400, "invalid_cursor")
    assert_problem(client.get("/v1/auth/changes", headers=served.headers("risk")), 403,
                   "forbidden")


def answer_cursor(client: Any, headers: dict[str, str]) -> str:
    """A next_cursor of the unfiltered list: no good for a filtered one."""
    cursor: str = client.get("/v1/auth/changes", headers=headers,
                             params={"limit": 1}).json()["next_cursor"]
    assert cursor
    return cursor


def test_a_refused_change_records_nothing(served: ApiApp, client: Any) -> None:
    admin = served.headers("admin")
    before = client.get("/v1/auth/changes", headers=admin, params={"limit": 1}).json()["data"]
    assert_problem(client.post("/v1/users/nobody-here/disable", headers=admin), 404,
                   "unknown_user")
    assert_problem(client.post("/v1/keys/0123456789abcdef/revoke", headers=admin), 404,
                   "unknown_key")
    weak = client.post("/v1/users", headers=admin,
                       json={"username": "weak", "password": "short", "roles": ["viewer"]})
    assert weak.status_code == 422
    after = client.get("/v1/auth/changes", headers=admin, params={"limit": 1}).json()["data"]
    assert after == before
