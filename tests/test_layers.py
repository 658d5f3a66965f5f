"""The layers of docs/architecture.md, as the import contracts in pyproject.toml hold them
(`lint-imports`, also run by `make lint`): a module imports only what stands below it, only the
composition root opens adapters, and the core never imports the runtime."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("payments/records.py", "import fundpool.stores", "Layers point down"),
    ("monitoring/figures.py", "from fundpool.payments import ports", None),
    ("server/app.py", "import fundpool.sql.database", "Only the composition root"),
    ("core/money.py", "import fundpool.runtime", "The core is pure"),
])
def test_an_import_against_the_layers_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str | None
) -> None:
    """The contracts are not vacuous: the same code with one import that points up (or
    reaches an adapter from an entry point) fails; one that points down passes."""
    shutil.copytree(ROOT / "src" / "fundpool", tmp_path / "fundpool",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "fundpool" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    result = lint_imports(tmp_path)
    if broken is None:
        assert result.returncode == 0, result.stdout
        return
    assert result.returncode != 0
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout
