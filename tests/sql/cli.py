"""`fundpool …` through typer's CliRunner, for the SQL layer's command tests."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from fundpool.cli.main import app

# Environment a developer may have set must not point the tests at another store.
runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})


def fundpool(*args: str, code: int = 0) -> Result:
    """`fundpool ARGS`, which must exit with `code`, and never with a traceback."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


def fundpool_json(*args: str, code: int = 0) -> Any:
    """The JSON document `fundpool ARGS --json` prints on stdout."""
    return json.loads(fundpool(*args, "--json", code=code).stdout)
