"""Database URLs (fundpool.sql.url): the two kinds a store may be, everything else refused with
`unsupported_database_url` naming the two forms, and no password ever shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.sql.url import (
    DEFAULT_SCHEMA,
    SCHEMA_NAME_PATTERN,
    DatabaseUrl,
    UnsupportedDatabaseUrl,
    parse_url,
    redact,
    split_schema,
)

FORMS = "sqlite:///PATH or postgresql://USER@HOST/DB[?schema=NAME]"


@pytest.mark.parametrize(("url", "parsed"), [
    ("sqlite:///data/ledger.sqlite3", DatabaseUrl("sqlite", "data/ledger.sqlite3")),
    ("sqlite:////srv/fundpool/ledger.sqlite3",
     DatabaseUrl("sqlite", "/srv/fundpool/ledger.sqlite3")),
    ("sqlite:///:memory:", DatabaseUrl("sqlite", ":memory:")),
    ("postgresql://fundpool@db.internal/pool",
     DatabaseUrl("postgresql", "postgresql://fundpool@db.internal/pool")),
    ("postgres://fundpool@db.internal:5433/pool?schema=pool_eu",
     DatabaseUrl("postgresql", "postgres://fundpool@db.internal:5433/pool", "pool_eu")),
    ("postgresql://u@h/db?sslmode=require&schema=_s1&connect_timeout=5",
     DatabaseUrl("postgresql", "postgresql://u@h/db?sslmode=require&connect_timeout=5", "_s1")),
])
def test_a_supported_url_is_parsed_and_shown_again(url: str, parsed: DatabaseUrl) -> None:
    assert parse_url(url) == parsed
    assert parse_url(parsed.text) == parsed


def test_the_schema_defaults_to_the_stores_own() -> None:
    # The URL leaves it to the store (`fundpool`); libpq never sees a schema parameter.
    assert parse_url("postgresql://u@h/db").schema is None
    assert DEFAULT_SCHEMA == "fundpool"
    assert split_schema("postgresql://u@h/db?schema=a&schema=b") == ("postgresql://u@h/db", "b")


@pytest.mark.parametrize(("url", "reason"), [
    ("mysql://fundpool@127.0.0.1/fundpool", None),
    ("", None),
    ("ledger.sqlite3", None),
    ("sqlite://relative.sqlite3", "sqlite:///"),
    ("sqlite:relative.sqlite3", "sqlite:///"),
    ("sqlite:///", "no file path"),
    ("postgresql://u@h/db?schema=bad-name!", "'bad-name!'"),
    ("postgresql://u@h/db?schema=", "''"),
    ("postgresql://u@h/db?schema=1st", "'1st'"),
    ("postgresql://u@h/db?schema=" + "s" * 64, "letters, digits"),
])
def test_an_unsupported_url_is_refused_naming_the_two_forms(url: str, reason: str | None) -> None:
    with pytest.raises(UnsupportedDatabaseUrl) as refused:
        parse_url(url)
    error = refused.value
    assert error.code == "unsupported_database_url"
    assert FORMS in error.detail
    if reason is None:
        assert "reason" not in error.facts
    else:
        assert reason in str(error.facts["reason"])


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(UnsupportedDatabaseUrl) as refused:
        parse_url("postgresql://fundpool:s3cret@db:5432/pool?schema=no-no")
    assert "s3cret" not in str(refused.value.to_dict())
    assert refused.value.facts["url"] == "postgresql://fundpool:***@db:5432/pool?schema=no-no"
    with pytest.raises(UnsupportedDatabaseUrl) as other:
        parse_url("mysql://root:hunter2@db/pool")
    assert "hunter2" not in str(other.value.to_dict())


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u:pw@h/db?schema=s", "postgresql://u:***@h/db?schema=s"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("sqlite:///data/ledger.sqlite3", "sqlite:///data/ledger.sqlite3"),
    ("http://[::1", "?"),  # not even a URL: nothing of it is shown
])
def test_redact_hides_the_password_alone(url: str, shown: str) -> None:
    assert redact(url) == shown


@given(st.from_regex(SCHEMA_NAME_PATTERN, fullmatch=True))
def test_every_plain_schema_name_is_accepted_and_kept(schema: str) -> None:
    parsed = parse_url(f"postgresql://u@h/db?schema={schema}")
    assert (parsed.target, parsed.schema) == ("postgresql://u@h/db", schema)
    assert parse_url(parsed.text) == parsed
