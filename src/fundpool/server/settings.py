"""The server's settings: defaults, then a TOML file, then the environment, then flags.

    FUNDPOOL_DB_URL=postgresql://... FUNDPOOL_WORKERS=4 fundpool serve
    fundpool serve --settings deploy/server.toml --port 9000

Every field is read from `FUNDPOOL_<NAME>` (upper case) or from the TOML file named by
`--settings` / `$FUNDPOOL_SETTINGS`; a flag of `fundpool serve` overrides both. An unknown key
in the file or a value of the wrong type stops the server at start with the field's name
(docs/configuration.md lists them all).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SETTINGS_ENV = "FUNDPOOL_SETTINGS"
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUNDPOOL_", extra="forbid",
                                      validate_default=True)

    # --- where the pool lives ---
    db_url: str | None = Field(None, description="Store URL: sqlite:///PATH or postgresql://... "
                               "(?schema=NAME). Unset: the SQLite file in data_dir.")
    data_dir: Path = Field(Path("data"), description="Directory of the embedded SQLite store.")
    config: Path = Field(Path("fundpool.toml"), description="Pool configuration (TOML).")
    alerts: Path | None = Field(None, description="Alert rules and SLOs (YAML, hot-reloaded).")

    # --- serving ---
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65_535, description="Port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes (PostgreSQL only; "
                         "SQLite serves from one).")
    log_level: LogLevel = Field("info", description="Least severe level logged.")
    log_json: bool = Field(False, description="One JSON object per log line (else text).")
    access_log: bool = Field(True, description="One log line per request, with its id.")

    # --- limits ---
    body_max_bytes: int = Field(1_048_576, ge=1_024, description="Largest JSON request body.")
    upload_max_bytes: int = Field(5_242_880, ge=1_024,
                                  description="Largest CSV payout file (the batch bound).")
    rate_limit_per_s: float = Field(1_000.0, gt=0, description="Requests per second per key "
                                    "or session, across all workers.")
    rate_limit_burst: int = Field(2_000, ge=1, description="Requests a key may make at once "
                                  "before the rate applies.")
    batch_size_max: int = Field(1_000, ge=1, le=8_192,
                                description="Most commands in one batch request.")

    # --- credentials ---
    idempotency_retention_s: int = Field(86_400, ge=3_600, description="How long an "
                                         "answer is kept for a retry with its Idempotency-Key "
                                         "(POSTs without a key in the domain).")
    session_ttl_s: int = Field(8 * 3600, ge=60, le=30 * 86_400,
                               description="Console session lifetime.")
    auth_cache_s: float = Field(5.0, ge=0, le=60, description="How long a worker trusts a key "
                                "it checked: a revocation takes effect within this.")
    cookie_secure: bool = Field(False, description="Session cookie only over HTTPS (set it "
                                "behind TLS).")

    # --- live figures ---
    ready_lag_max_events: int = Field(1_000, ge=0, description="/readyz answers 503 while a "
                                      "pool's figures are more events than this behind.")
    evaluate_every_s: float = Field(15.0, ge=1.0, description="Seconds between alert "
                                    "evaluations (with `alerts`).")

    console: bool = Field(False, description="Serve the web console at /console (one worker "
                          "only: NiceGUI keeps each page's state in its process).")
    console_secret: str | None = Field(None, description="Signs the console's browser cookie; "
                                       "unset: a new one at each start (everyone signs in "
                                       "again after a restart).")
    engine: bool = Field(True, description="Run the payment engine: one per pool, in the "
                         "worker that holds the pool's lease (PostgreSQL) or in the one "
                         "process (SQLite). Off: payments wait in `initiated` for an engine "
                         "elsewhere.")
    rails_dir: Path | None = Field(None, description="Where the simulated rails keep what they "
                                   "were sent (one journal per rail; default: <data_dir>/rails).")
    audit_key: Path | None = Field(None, description="The audit log's Ed25519 signing key "
                                   "(PEM PKCS8, made on first use; default: "
                                   "<data_dir>/audit-log.key).")
    audit_publish_dir: Path | None = Field(None, description="Where each signed audit "
                                           "checkpoint is also written (publish it outside).")
    audit_checkpoint_s: float = Field(60.0, ge=1.0, le=86_400.0, description="Seconds "
                                      "between signed audit checkpoints, when the log grew.")
    simulate: str | None = Field(None, description="Run the traffic simulator in the server "
                                 "at this rate (`50/s`): a live demo pool. SQLite or "
                                 "PostgreSQL, one worker.")

    @model_validator(mode="after")
    def _one_console_worker(self) -> Settings:
        if self.workers > 1 and (self.console or self.simulate):
            raise ValueError("the console and the simulator run in one worker: serve them "
                             "with workers=1 beside the API's other workers")
        return self

    @model_validator(mode="after")
    def _one_sqlite_worker(self) -> Settings:
        if self.workers > 1 and not self.postgres:
            raise ValueError("SQLite serves from one worker: set db_url to PostgreSQL for "
                             f"workers={self.workers}")
        return self

    @property
    def postgres(self) -> bool:
        """Whether the store is PostgreSQL (several workers may share it). The URL itself is
        checked when the store is opened (fundpool.sql.url: `unsupported_database_url`)."""
        return (self.db_url or "").startswith(("postgresql://", "postgres://"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_cls.model_config.get("toml_file") or os.environ.get(SETTINGS_ENV)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(str(path))))
        return tuple(sources)


def load_settings(file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `file` (or $FUNDPOOL_SETTINGS), the environment and `overrides` (flags;
    None means "not given"). A missing file is an error, not a silent default."""
    given = {name: value for name, value in overrides.items() if value is not None}
    if file is None:
        named = os.environ.get(SETTINGS_ENV)
        if named and not Path(named).is_file():
            raise ValueError(f"settings file {named} (${SETTINGS_ENV}) does not exist")
        return Settings(**given)
    if not file.is_file():
        raise ValueError(f"settings file {file} does not exist")

    class FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=file)

    return Settings.model_validate(FromFile(**given).model_dump())


def as_environment(settings: Settings) -> dict[str, str]:
    """The settings as `FUNDPOOL_*` variables: how `serve` hands them to worker processes."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"FUNDPOOL_{name.upper()}"] = str(value).lower() if isinstance(value, bool) \
            else str(value)
    return env
