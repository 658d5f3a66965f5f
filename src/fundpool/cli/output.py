"""Where a command prints: rich tables for people, one JSON document on stdout with `--json`.

A domain error prints `error[<code>]: <detail>` and its facts on stderr (with `--json`: the
error's `to_dict()` on stdout). Log lines go to stderr, so that `--json` stays one document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from fundpool.core.errors import FundpoolError

WIDE_OUTPUT = 1_000  # columns when stdout is not a terminal: no folding of ids or wei amounts


@dataclass(frozen=True, slots=True)
class Output:
    """One command's output: JSON or rich renderables."""

    json: bool

    def emit(self, document: Mapping[str, object], human: Any = None) -> None:
        emit(document, human, self.json)

    def error(self, error: FundpoolError) -> None:
        report_error(error, self.json)


def emit(document: Mapping[str, object], human: Any, as_json: bool) -> None:
    """Print `document` as JSON with --json, else the rich renderable(s) `human`."""
    if as_json:
        emit_json(document)
        return
    console = stdout_console()
    for renderable in human if isinstance(human, list) else [human]:
        if renderable is not None:
            console.print(renderable)


class _Stderr:
    """sys.stderr as it is when a line is logged (a test runner swaps it per command)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def log_to_stderr() -> None:
    """Send structlog's lines to stderr, so that `--json` stays one document on stdout; only
    where lines go is set, the rest of structlog's settings stay. (structlog loads here, with
    the commands that log: a command that only prints starts without it.)"""
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_Stderr()))  # type: ignore[arg-type]


def stdout_console() -> Console:
    console = Console(highlight=False, markup=False, emoji=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, emoji=False, width=WIDE_OUTPUT)
    return console


def emit_json(document: Mapping[str, object]) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def report_error(error: FundpoolError, as_json: bool) -> None:
    if as_json:
        emit_json(error.to_dict())
        return
    console = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    console.print(Text.assemble(("error", "bold red"), f"[{error.code}]: {error.detail}"))
    for name, value in error.facts.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        console.print(f"  {name}: {shown}")
