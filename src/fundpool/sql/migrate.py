"""The migration runner: numbered, forward-only migrations per component, each applied in one
transaction with the row that records it, so a crash leaves a migration applied whole or not at
all (docs/adr/0014-sql-layer-and-migrations.md).

A database holds several components' tables (the ledger, auth, the API's kept answers,
projections, alerts); each component has its own folder of migrations in
`fundpool/sql/migrations/` and its own version, the highest applied, in `schema_migrations`.
A component whose tables exist but which has no row there was written before versions were
kept: it is at version 0, and its baseline migration (all `CREATE … IF NOT EXISTS`) adopts it.

`upgrade` applies what is pending; `check` refuses a database newer than the code, or older
than it (saying to run `fundpool db upgrade`); `status` says where each component stands.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fundpool.core.errors import FundpoolError
from fundpool.sql.database import Database, Transaction

MIGRATIONS_PACKAGE = "fundpool.sql.migrations"
LOCK_NAME = "fundpool.migrate"
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgresql))?\.(sql|py)\Z")

TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at_us BIGINT NOT NULL,
    PRIMARY KEY (component, version)
)
"""


class SchemaOutdated(FundpoolError):
    code = "schema_outdated"
    title = "the store's schema is older than this code: run `fundpool db upgrade`"


class SchemaTooNew(FundpoolError):
    code = "schema_too_new"
    title = "the store's schema is newer than this code: run the release that wrote it, or newer"


class MigrationFailed(FundpoolError):
    code = "migration_failed"
    title = "a migration failed and was rolled back; the store is at the version before it"


class InvalidMigrations(FundpoolError):
    code = "invalid_migrations"
    title = "the migrations shipped with this code are not numbered 1, 2, 3 … without a gap"


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    checksum: str
    sql: str | None = None  # the script, or None for a Python migration
    module: str | None = None

    def apply(self, tx: Transaction) -> None:
        if self.sql is not None:
            tx.script(self.sql)
            return
        assert self.module is not None
        upgrade: Callable[[Transaction], None] = importlib.import_module(self.module).upgrade
        upgrade(tx)


@dataclass(frozen=True, slots=True)
class Component:
    """A set of tables with its own migrations: `marker` is a table its baseline creates, by
    which a store written before versions were kept is recognised."""

    name: str
    marker: str
    package: str = MIGRATIONS_PACKAGE

    def migrations(self, dialect: str) -> list[Migration]:
        """This component's migrations for `dialect` (sqlite | postgresql), in order: read
        from the package once per process."""
        return list(_migrations(self, dialect))

    def head(self, dialect: str) -> int:
        return len(self.migrations(dialect))


@functools.cache
def _migrations(component: Component, dialect: str) -> tuple[Migration, ...]:
    """This component's migrations for `dialect` (sqlite | postgresql), in order."""
    folder = resources.files(component.package).joinpath(component.name)
    found: dict[int, Migration] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        match = FILE_PATTERN.match(entry.name)
        if match is None:
            continue
        number, name, only, kind = match.groups()
        if only is not None and only != dialect:
            continue
        version = int(number)
        text = entry.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode()).hexdigest()
        if version in found:
            raise InvalidMigrations(component=component.name, version=version,
                                    reason="two migrations with one number")
        if kind == "sql":
            found[version] = Migration(component.name, version, name, checksum, sql=text)
        else:
            module = f"{component.package}.{component.name}.{entry.name.removesuffix('.py')}"
            found[version] = Migration(component.name, version, name, checksum, module=module)
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise InvalidMigrations(component=component.name, versions=versions)
    return tuple(found[version] for version in versions)


LEDGER = Component("ledger", marker="journal")
AUTH = Component("auth", marker="api_keys")
API = Component("api", marker="api_idempotency")
PROJECTIONS = Component("projections", marker="projection_cursors")
ALERTS = Component("alerts", marker="alerts")
RISK = Component("risk", marker="risk_policies")
APPROVALS = Component("approvals", marker="approval_actions")
AUDIT = Component("audit", marker="audit_entries")
RECON = Component("recon", marker="recon_actions")
DESK = Component("desk", marker="desk_actions")
# In the order `fundpool db upgrade` applies them to a ledger's database.
COMPONENTS: tuple[Component, ...] = (LEDGER, AUTH, API, PROJECTIONS, ALERTS, RISK,
                                      APPROVALS, AUDIT, RECON, DESK)


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    component: str
    version: int | None  # None: none of its tables; 0: tables from before versions were kept
    head: int
    changed: tuple[str, ...] = ()  # applied migrations whose text is no longer what was applied

    @property
    def pending(self) -> int:
        return self.head - (self.version or 0)

    @property
    def state(self) -> str:
        if self.version is None:
            return "absent"
        if self.version > self.head:
            return "newer"
        return "current" if self.version == self.head else "outdated"

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "version": self.version, "head": self.head,
                "state": self.state, "pending": max(self.pending, 0),
                "changed": list(self.changed)}


def _applied(db: Database, component: Component) -> dict[int, str] | None:
    """Applied versions and their checksums; None when the component was never versioned."""
    if not db.has_table("schema_migrations"):
        return None
    rows = db.rows("SELECT version, checksum FROM schema_migrations WHERE component = ?",
                   (component.name,))
    return {int(version): checksum for version, checksum in rows} or None


def status(db: Database, component: Component) -> ComponentStatus:
    migrations = component.migrations(db.dialect.name)
    if not db.exists():
        return ComponentStatus(component.name, None, len(migrations))
    applied = _applied(db, component)
    if applied is None:
        version = 0 if db.has_table(component.marker) else None
        return ComponentStatus(component.name, version, len(migrations))
    changed = tuple(m.name for m in migrations
                    if m.version in applied and applied[m.version] != m.checksum)
    return ComponentStatus(component.name, max(applied), len(migrations), changed)


def unknown_components(db: Database, known: Sequence[Component] = COMPONENTS
                       ) -> dict[str, int]:
    """Components recorded in `schema_migrations` that this code does not know (a later
    release's), with their versions: shown by `fundpool db status`, never touched."""
    if not db.exists() or not db.has_table("schema_migrations"):
        return {}
    names = {component.name for component in known}
    rows = db.rows("SELECT component, MAX(version) FROM schema_migrations GROUP BY component")
    return {str(name): int(version) for name, version in sorted(rows) if name not in names}


def _facts(db: Database, found: ComponentStatus) -> dict[str, object]:
    return {"store": db.shown, "component": found.component, "version": found.version,
            "code_version": found.head}


def refuse_newer(db: Database, component: Component) -> ComponentStatus:
    """The component's status, unless its schema is newer than this code (`schema_too_new`)."""
    found = status(db, component)
    if found.state == "newer":
        raise SchemaTooNew(None, **_facts(db, found))
    return found


def refuse(db: Database, found: ComponentStatus) -> ComponentStatus:
    """`found`, if this code may use the component as it is: a newer schema is
    `schema_too_new`, an older one `schema_outdated` (absent is left to the caller)."""
    if found.state == "newer":
        raise SchemaTooNew(None, **_facts(db, found))
    if found.state == "outdated":
        raise SchemaOutdated(
            f"the {found.component} schema of {db.shown} is at version {found.version}, this "
            f"code needs {found.head}: run `fundpool db upgrade` with the same store options",
            **_facts(db, found))
    return found


def check(db: Database, component: Component) -> ComponentStatus:
    """The component's status, if this code may use it as it is (`refuse`)."""
    return refuse(db, status(db, component))


def upgrade(db: Database, component: Component, *,
            now_us: Callable[[], int] = lambda: time.time_ns() // 1_000) -> list[Migration]:
    """Apply the component's pending migrations, each in one transaction with its record;
    the ones applied. Safe to run from several processes at once: each migration is decided
    under the migration lock, after reading the version again."""
    migrations = component.migrations(db.dialect.name)
    db.create()
    with db.transaction(LOCK_NAME) as tx:
        tx.script(TABLE)
    done: list[Migration] = []
    for migration in migrations:
        try:
            with db.transaction(LOCK_NAME) as tx:
                row = tx.one("SELECT MAX(version) FROM schema_migrations WHERE component = ?",
                             (component.name,))
                current = 0 if row is None or row[0] is None else int(row[0])
                if current > len(migrations):
                    raise SchemaTooNew(store=db.shown, component=component.name,
                                       version=current, code_version=len(migrations))
                if migration.version <= current:
                    continue
                migration.apply(tx)
                tx.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum, "
                    "applied_at_us) VALUES (?, ?, ?, ?, ?)",
                    (component.name, migration.version, migration.name, migration.checksum,
                     now_us()),
                )
        except FundpoolError:
            raise
        except db.dialect.driver_errors as error:
            raise MigrationFailed(store=db.shown, component=component.name,
                                  version=migration.version, name=migration.name,
                                  reason=str(error)) from error
        done.append(migration)
    return done


_ENSURING = threading.Lock()


def ensure(db: Database, component: Component) -> None:
    """What a store does when it is initialised: a database without the component's tables
    gets them at the head version; one at the head is left as it is; an older or newer one is
    refused (`schema_outdated` names the command that upgrades it)."""
    # One thread of a process at a time: creating an absent component applies its
    # migrations one transaction each, and another thread reading the version between two of
    # them would refuse the store as outdated (the server creates every component before its
    # workers start, so processes never meet here).
    with _ENSURING:
        found = status(db, component)
        if found.state == "absent":
            upgrade(db, component)
            return
        refuse(db, found)


def upgrade_all(db: Database, components: Sequence[Component] = COMPONENTS
                ) -> dict[str, list[Migration]]:
    """Every component's pending migrations, in order. A store newer than this code in any
    component is refused before anything is applied to the others."""
    for component in components:
        refuse_newer(db, component)
    return {component.name: upgrade(db, component) for component in components}
