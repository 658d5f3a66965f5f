"""`/v1/sessions`, `/v1/me`, `/v1/keys`, `/v1/users`, `/v1/auth/changes`: logging in, managing
credentials, and the trail of who changed them.

A console user logs in with `POST /v1/sessions` (the one route open to anonymous callers): the
answer sets the `fundpool_session` cookie (HttpOnly, SameSite=Strict) and returns the session
token and a CSRF token; a script may send the token as `Authorization: Bearer` instead of the
cookie. An API key's secret is shown once, when it is created or rotated; the store keeps only
its hash.

Every change to a key or a user is made in the caller's name (`actor_of`: the principal, its
roles, its session or key, the request id) and recorded with it in the same transaction;
`GET /v1/auth/changes` reads that trail, newest first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fundpool.auth.errors import AuthenticationFailed, KeyAlreadyRotated, SelfGrant
from fundpool.auth.model import ApiKeyInfo, AuthChange, UserInfo
from fundpool.auth.roles import P, Role
from fundpool.core.errors import FundpoolError
from fundpool.ledger.docs import iso
from fundpool.server.v1.actors import ActorOut, actor_doc
from fundpool.server.v1.context import api_of
from fundpool.server.v1.idempotency import HEADER, idempotent_post
from fundpool.server.v1.models import Strict
from fundpool.server.v1.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    make_cursor,
    read_cursor,
)
from fundpool.server.v1.problems import PROBLEMS, parse_instant
from fundpool.server.v1.security import (
    AUTHENTICATED,
    PUBLIC,
    SESSION_COOKIE,
    SecuredRouter,
    actor_of,
    needs,
    principal_of,
)

router = SecuredRouter(tags=["auth"])

IdempotencyHeader = Annotated[str | None, Header(alias=HEADER, max_length=255)]
KeyPath = Annotated[str, Path(max_length=64)]
UserPath = Annotated[str, Path(max_length=64)]


class KeyNotRotatable(FundpoolError):
    code = "key_not_rotatable"
    title = "the key is revoked, expired or already rotated"


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    token: str
    csrf_token: str
    expires_at: str
    username: str
    roles: list[str]
    permissions: list[str]


class MeOut(BaseModel):
    kind: str
    id: str
    name: str
    roles: list[str]
    permissions: list[str]
    expires_at: str | None


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    roles: list[Role] = Field(min_length=1, max_length=6)
    scopes: list[P] | None = Field(None, description="Narrow the roles' permissions.")
    expires_at: str | None = Field(None, max_length=64, description="ISO-8601 with a zone.")


class KeyOut(BaseModel):
    id: str
    name: str
    roles: list[str]
    scopes: list[str] | None
    state: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    replaced_by: str | None
    created_by: ActorOut = Field(description="Who created the key (for a rotated key: who "
                                 "rotated it). A key from before actors were kept: kind "
                                 "`unknown`, with the name it kept.")


class NewKeyOut(BaseModel):
    key: KeyOut
    token: str | None = Field(description="The secret: shown this once, never again (a replay "
                              "of the request, by its Idempotency-Key, answers null).")


def _without_token(doc: dict[str, object]) -> dict[str, object]:
    return {**doc, "token": None}


class RotateIn(Strict):
    grace_s: int = Field(0, ge=0, le=30 * 86_400,
                         description="How long the old secret keeps working.")


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=12, max_length=1024)
    roles: list[Role] = Field(min_length=1, max_length=6)


class UserOut(BaseModel):
    id: str
    username: str
    roles: list[str]
    disabled: bool
    created_at: str
    created_by: ActorOut | None = Field(description="Who added the user; null for one added "
                                        "before actors were kept.")


class AuthChangeOut(BaseModel):
    id: int = Field(description="Increasing: the order the changes were recorded in.")
    at: str
    at_us: int
    action: str = Field(description="key.created | key.rotated | key.revoked | user.created | "
                        "user.roles_changed | user.password_changed | user.disabled")
    target_kind: Literal["key", "user"]
    target_id: str = Field(description="The key's or the user's id.")
    target_name: str = Field(description="The key's name or the username.")
    actor: ActorOut | None = Field(description="Who made the change.")
    request_id: str | None = Field(description="The X-Request-ID of the call that made it "
                                   "(none from the CLI).")
    details: dict[str, Any] = Field(description="The change's facts: a key's roles, a user's "
                                    "roles before and after, the key a rotation made; never "
                                    "a secret or a password.")


def _key_doc(info: ApiKeyInfo, now_us: int) -> dict[str, object]:
    return {"id": info.id, "name": info.name, "roles": list(info.roles),
            "scopes": None if info.scopes is None else list(info.scopes),
            "state": info.state(now_us), "created_at": iso(info.created_at_us),
            "expires_at": None if info.expires_at_us is None else iso(info.expires_at_us),
            "revoked_at": None if info.revoked_at_us is None else iso(info.revoked_at_us),
            "replaced_by": info.replaced_by,
            "created_by": actor_doc(info.creator, info.created_by)}


def _user_doc(info: UserInfo) -> dict[str, object]:
    return {"id": info.id, "username": info.username, "roles": list(info.roles),
            "disabled": bool(info.disabled), "created_at": iso(info.created_at_us),
            "created_by": actor_doc(info.creator)}


def _change_doc(change: AuthChange) -> dict[str, object]:
    return {"id": change.id, "at": iso(change.at_us), "at_us": change.at_us,
            "action": change.action, "target_kind": change.target_kind,
            "target_id": change.target_id, "target_name": change.target_name,
            "actor": actor_doc(change.actor),
            "request_id": None if change.actor is None else change.actor.request_id,
            "details": dict(change.details)}


# --- sessions --------------------------------------------------------------------------------


@router.post("/sessions", status_code=201, response_model=SessionOut, openapi_extra=needs(PUBLIC),
             responses=PROBLEMS)
def login(body: LoginIn, request: Request) -> JSONResponse:
    """Log in: a session for the console (cookie) or a script (bearer token). The one POST
    without `Idempotency-Key`: each log-in is a new session, and its secret is never kept."""
    api = api_of(request)
    with api.store_errors():
        principal, token, csrf = api.auth.login(body.username, body.password,
                                                now_us=api.clock.now_us(),
                                                ttl_s=api.settings.session_ttl_s)
    expires = principal.expires_at_us or 0
    response = JSONResponse({
        "token": token, "csrf_token": csrf, "expires_at": iso(expires),
        "username": principal.name, "roles": sorted(str(r) for r in principal.roles),
        "permissions": sorted(str(p) for p in principal.permissions)}, status_code=201)
    response.set_cookie(SESSION_COOKIE, token, max_age=api.settings.session_ttl_s,
                        httponly=True, samesite="strict", secure=api.settings.cookie_secure,
                        path="/")
    return response


@router.delete("/sessions/current", status_code=204, openapi_extra=needs(AUTHENTICATED),
               responses=PROBLEMS)
def logout(request: Request) -> Response:
    """End the caller's session (an API key has none: 204 all the same)."""
    api = api_of(request)
    principal = principal_of(request)
    if principal.session_id is not None:
        with api.store_errors():
            api.auth.logout(principal.session_id, now_us=api.clock.now_us())
        token = request.scope.get("state", {}).get("token")
        if token:
            api.authenticator.forget(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut, openapi_extra=needs(AUTHENTICATED), responses=PROBLEMS)
def me(request: Request) -> dict[str, object]:
    """Who the credentials belong to, and what they may do."""
    principal = principal_of(request)
    return {"kind": principal.kind, "id": principal.id, "name": principal.name,
            "roles": sorted(str(r) for r in principal.roles),
            "permissions": sorted(str(p) for p in principal.permissions),
            "expires_at": None if principal.expires_at_us is None
            else iso(principal.expires_at_us)}


# --- API keys --------------------------------------------------------------------------------


@router.get("/keys", response_model=list[KeyOut], openapi_extra=needs(P.KEYS_READ),
            responses=PROBLEMS)
def list_keys(request: Request) -> list[dict[str, object]]:
    """Every API key, without its secret."""
    api = api_of(request)
    now_us = api.clock.now_us()
    with api.store_errors():
        return [_key_doc(info, now_us) for info in api.auth.keys()]  # noqa: SIM118


@router.post("/keys", status_code=201, response_model=NewKeyOut,
             openapi_extra=needs(P.KEYS_MANAGE), responses=PROBLEMS)
def create_key(body: KeyIn, request: Request,
               idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """A new API key; its secret is in this answer only."""
    api = api_of(request)
    actor = actor_of(request)

    def run() -> dict[str, object]:
        now_us = api.clock.now_us()
        expires = None if body.expires_at is None else parse_instant(body.expires_at)
        info, token = api.auth.create_key(
            body.name, [Role(r) for r in body.roles],
            scopes=None if body.scopes is None else [P(s) for s in body.scopes],
            expires_at_us=expires, now_us=now_us, actor=actor)
        return {"key": _key_doc(info, now_us), "token": token}

    return idempotent_post(request, idempotency_key, body.model_dump(mode="json"), run, status=201,
                           kept=_without_token)


@router.post("/keys/{key_id}/rotate", status_code=201, response_model=NewKeyOut,
             openapi_extra=needs(P.KEYS_MANAGE), responses=PROBLEMS)
def rotate_key(key_id: KeyPath, request: Request, body: RotateIn | None = None,
               idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Replace a key's secret: a new key with the same roles; the old one keeps working for
    `grace_s` seconds, then expires."""
    api = api_of(request)
    actor = actor_of(request)
    grace = 0 if body is None else body.grace_s

    def run() -> dict[str, object]:
        now_us = api.clock.now_us()
        try:
            info, token = api.auth.rotate_key(key_id, now_us=now_us, grace_s=grace,
                                              actor=actor)
        except (AuthenticationFailed, KeyAlreadyRotated) as error:
            # The key to rotate is revoked or expired: the caller's own credentials are fine,
            # so this is a conflict with the key's state, not a 401.
            raise KeyNotRotatable(error.detail, key_id=key_id, reason=error.code) from error
        return {"key": _key_doc(info, now_us), "token": token}

    return idempotent_post(request, idempotency_key, {"grace_s": grace}, run, status=201,
                           kept=_without_token)


@router.post("/keys/{key_id}/revoke", response_model=KeyOut,
             openapi_extra=needs(P.KEYS_MANAGE), responses=PROBLEMS)
def revoke_key(key_id: KeyPath, request: Request,
               idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Revoke a key at once (every worker stops trusting it within `auth_cache_s`)."""
    api = api_of(request)
    actor = actor_of(request)

    def run() -> dict[str, object]:
        now_us = api.clock.now_us()
        return _key_doc(api.auth.revoke_key(key_id, now_us=now_us, actor=actor), now_us)

    return idempotent_post(request, idempotency_key, {}, run)


# --- users -----------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserOut], openapi_extra=needs(P.KEYS_READ),
            responses=PROBLEMS)
def list_users(request: Request) -> list[dict[str, object]]:
    api = api_of(request)
    with api.store_errors():
        return [_user_doc(info) for info in api.auth.users()]


@router.post("/users", status_code=201, response_model=UserOut,
             openapi_extra=needs(P.USERS_MANAGE), responses=PROBLEMS)
def create_user(body: UserIn, request: Request,
                idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """A console user (argon2id password hash)."""
    api = api_of(request)
    actor = actor_of(request)

    def run() -> dict[str, object]:
        info = api.auth.add_user(body.username, body.password, [Role(r) for r in body.roles],
                                 now_us=api.clock.now_us(), actor=actor)
        return _user_doc(info)

    digest_body = {**body.model_dump(mode="json"), "password": None}
    return idempotent_post(request, idempotency_key, digest_body, run, status=201)


class RolesIn(Strict):
    roles: list[Role] = Field(min_length=1, max_length=6)
    totp: str | None = Field(default=None, max_length=16,
                             description="The caller's current TOTP code: role changes need one.")


@router.post("/users/{username}/roles", response_model=UserOut,
             openapi_extra=needs(P.USERS_MANAGE), responses=PROBLEMS)
def set_user_roles(username: UserPath, body: RolesIn, request: Request) -> dict[str, object]:
    """Replace a user's roles, confirmed by the caller's TOTP code. Nobody changes their own
    roles (`self_grant`, 403)."""
    api = api_of(request)
    actor = actor_of(request)
    target = next((u for u in api.auth.users() if u.username == username), None)
    if target is not None and actor.kind == "user" and actor.id == target.id:
        raise SelfGrant(username=username)
    api.approvals.confirm_totp(actor, body.totp, "user.roles_changed")
    return _user_doc(api.auth.set_roles(username, [Role(r) for r in body.roles],
                                        now_us=api.clock.now_us(), actor=actor))


@router.post("/users/{username}/disable", response_model=UserOut,
             openapi_extra=needs(P.USERS_MANAGE), responses=PROBLEMS)
def disable_user(username: UserPath, request: Request,
                 idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Disable a user and end their sessions."""
    api = api_of(request)
    actor = actor_of(request)

    def run() -> dict[str, object]:
        return _user_doc(api.auth.disable_user(username, now_us=api.clock.now_us(),
                                               actor=actor))

    return idempotent_post(request, idempotency_key, {}, run)


# --- the trail of changes --------------------------------------------------------------------


@router.get("/auth/changes", response_model=Page[AuthChangeOut],
            openapi_extra=needs(P.KEYS_READ), responses=PROBLEMS)
def list_auth_changes(
    request: Request,
    target_kind: Annotated[Literal["key", "user"] | None, Query(
        description="Only changes to keys, or to users.")] = None,
    target_id: Annotated[str | None, Query(max_length=64, description="Only changes to this "
                                           "key or user (its id).")] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """Who changed which key or user, and when: every key created, rotated or revoked, and
    every user added, given roles or a password, or disabled, newest first, a page at a
    time. Each names its actor and the request id of the call that made it."""
    filters = {"target_kind": target_kind, "target_id": target_id}
    after = read_cursor(cursor, "auth_changes", filters, int)
    api = api_of(request)
    with api.store_errors():
        changes = api.auth.changes(target_kind=target_kind, target_id=target_id,
                                   limit=limit + 1, before=after)
    page = changes[:limit]
    return {"data": [_change_doc(c) for c in page],
            "next_cursor": make_cursor("auth_changes", filters, page[-1].id)
            if len(changes) > limit else None}



