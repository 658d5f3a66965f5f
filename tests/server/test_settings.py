"""Server settings: defaults, TOML file, environment, flags, in that order of strength; every
setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fundpool.server.settings import SETTINGS_ENV, Settings, as_environment, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FUNDPOOL_"):
            monkeypatch.delenv(name)


def test_flags_beat_environment_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    file = tmp_path / "server.toml"
    file.write_text('port = 9001\nhost = "0.0.0.0"\nrate_limit_per_s = 50\n')
    monkeypatch.setenv("FUNDPOOL_PORT", "9002")
    settings = load_settings(file, port=None, log_level="debug")
    assert settings.port == 9002  # the environment beats the file
    assert settings.host == "0.0.0.0"  # the file beats the default
    assert settings.rate_limit_per_s == 50
    assert settings.log_level == "debug"
    assert load_settings(file, port=9003).port == 9003  # a flag beats both


def test_bad_settings_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "server.toml"
    file.write_text("prot = 9001\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(file)
    with pytest.raises(ValidationError, match="port"):
        load_settings(None, port=70_000)
    with pytest.raises(ValueError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    monkeypatch.setenv(SETTINGS_ENV, str(file))
    with pytest.raises(ValidationError, match="prot"):
        load_settings(None)


def test_sqlite_serves_from_one_worker() -> None:
    with pytest.raises(ValidationError, match="one worker"):
        Settings(workers=2)
    assert Settings(workers=4, db_url="postgresql://x@h/db").workers == 4


def test_settings_travel_to_workers_through_the_environment(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    chosen = Settings(port=8123, log_json=True, db_url="postgresql://u@h/db?schema=s",
                      workers=3, alerts=Path("rules.yaml"))
    for name, value in as_environment(chosen).items():
        monkeypatch.setenv(name, value)
    assert Settings() == chosen


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in text, name
        assert f"`FUNDPOOL_{name.upper()}`" in text, name
