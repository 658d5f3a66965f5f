"""The console's string table (fundpool.console.i18n): both languages for every key, the same
placeholders in both, and every key the console's source asks for is in the table."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from fundpool.auth.roles import Role
from fundpool.console import feed, preview, shell, texts
from fundpool.console.format import HEALTH_STATUSES, LOCALES
from fundpool.console.i18n import STRINGS, t

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "fundpool" / "console"
SOURCES = sorted(CONSOLE.rglob("*.py"))
KEY_SHAPE = re.compile(r"[a-z_]+\.[a-z0-9_]+")
FAMILIES = {key.split(".", 1)[0] for key in STRINGS}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _module_constant_keys(path: Path, name: str) -> list[str]:
    """The keys of a module-level tuple or dict literal (without importing the module, which
    would register its pages with NiceGUI)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == name for target in node.targets):
            value = node.value
            items = value.keys if isinstance(value, ast.Dict) else getattr(value, "elts", [])
            return [ast.literal_eval(item) for item in items if item is not None]
    raise AssertionError(f"{name} not found in {path}")


CARDS = _module_constant_keys(CONSOLE / "pages" / "overview.py", "CARDS")
PERIODS = _module_constant_keys(CONSOLE / "pages" / "overview.py", "PERIODS")
# Keys built at run time, `t(f"state.{…}")`: each family and the values it is built from.
FAMILY_MEMBERS: dict[str, list[str]] = {
    "state": list(feed.STATES),
    "kind": list(feed.KINDS),
    "figure": [*CARDS, "reporting", "change"],
    "severity": list(shell.SEVERITY_COLOURS),
    "period": PERIODS,
    "since": list(feed.SINCE_WINDOWS_S),
    "role": [role.value for role in Role],
    "problem": list(texts.PROBLEM_CODES),
    "field": list(texts.FIELDS),
    "fact": list(texts.FACTS),
    "subject": list(texts.SUBJECT_KEYS),
    "csv": list(preview.COLUMNS),
    "action": list(texts.ACTIONS),
    "actor": list(texts.SYSTEM_ACTORS),
    "health": list(HEALTH_STATUSES),
    "exclusion": list(texts.EXCLUSIONS),
    "resolution": ["second", "minute", "hour"],
}


def _translation_calls() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(literal keys, f-string families) of every `t(…)`, `tr(…)`, `x.t(…)` call in the
    console's source, each with where it is."""
    literal: list[tuple[str, str]] = []
    families: list[tuple[str, str]] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if name not in ("t", "tr"):
                continue
            where = f"{path.relative_to(CONSOLE)}:{node.lineno}"
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                literal.append((first.value, where))
            elif isinstance(first, ast.JoinedStr) and first.values \
                    and isinstance(first.values[0], ast.Constant):
                families.append((str(first.values[0].value), where))
    return literal, families


LITERAL_KEYS, FSTRING_FAMILIES = _translation_calls()


@pytest.mark.parametrize("key", sorted(STRINGS))
def test_both_languages_with_the_same_placeholders(key: str) -> None:
    assert KEY_SHAPE.fullmatch(key), key
    en, zh = STRINGS[key]
    assert en.strip(), f"{key}: no English text"
    assert zh.strip(), f"{key}: no 简体中文 text"
    assert _placeholders(en) == _placeholders(zh), (key, en, zh)
    values = dict.fromkeys(_placeholders(en), "x")
    for locale in LOCALES:
        assert t(key, locale, **values)


def test_the_source_asks_for_keys_the_table_has() -> None:
    assert len(LITERAL_KEYS) > 100, "the scan found too few t(…) calls: is it still right?"
    missing = [(key, where) for key, where in LITERAL_KEYS if key not in STRINGS]
    assert not missing, missing


def test_keys_named_outside_calls_are_in_the_table() -> None:
    """Keys handed to `t` through a variable (the navigation, the sign-in notices, a page's
    title key): every string in the source shaped like a key of a known family."""
    named = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and KEY_SHAPE.fullmatch(node.value) \
                    and node.value.split(".", 1)[0] in FAMILIES:
                named.append((node.value, f"{path.relative_to(CONSOLE)}:{node.lineno}"))
    assert {"nav.overview", "login.expired"} <= {key for key, _ in named}
    missing = [(key, where) for key, where in named if key not in STRINGS]
    assert not missing, missing


def test_keys_built_at_run_time_have_every_member() -> None:
    used = {prefix for prefix, _ in FSTRING_FAMILIES}
    assert used, "the scan found no t(f\"…\") call: is it still right?"
    unknown = [(prefix, where) for prefix, where in FSTRING_FAMILIES
               if not prefix.endswith(".") or prefix[:-1] not in FAMILY_MEMBERS]
    assert not unknown, f"a new family of run-time keys: add it to FAMILY_MEMBERS: {unknown}"
    missing = [f"{family}.{member}" for family, members in FAMILY_MEMBERS.items()
               for member in members if f"{family}.{member}" not in STRINGS]
    assert not missing, missing


def test_a_missing_key_is_an_error_not_a_blank() -> None:
    with pytest.raises(KeyError):
        t("nav.no_such_page")
