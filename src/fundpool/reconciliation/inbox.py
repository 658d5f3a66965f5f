"""The bank's statements, imported as they arrive: the ISO 20022 rail moves each end-of-day
camt.053 from the bank into `<exchange>/statements/` (docs/bank-rail.md); the pool's leader
imports every file there into reconciliation (docs/reconciliation.md), as a cashier would,
and moves it to `statements/imported/`, or to `statements/refused/` with a `.why.txt` beside
it naming the refusal. A file already imported (the same bytes, or the same statement) is
moved to `imported/` too: nothing is imported twice, nothing is left behind.

A file is moved only after its import committed (or was refused), so a crash between the two
imports it again on the next pass, which `duplicate_statement` turns into a move."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from fundpool.channels.iso_rail import move_durably, visible_files, write_atomically
from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError
from fundpool.reconciliation.service import ReconService

log = structlog.get_logger("fundpool.reconciliation")

IMPORTER = Actor("system", "statement-importer", "statement importer", ("system",))
IMPORTED = "imported"
REFUSED = "refused"
FILES_PER_PASS_MAX = 50  # a backlog is taken over several passes, not in one long hold


@dataclass(frozen=True, slots=True)
class TakenFile:
    name: str
    outcome: str  # "imported", "duplicate" or the refusal's code


class StatementInbox:
    def __init__(self, service: ReconService, channel: str, directory: Path) -> None:
        self.service = service
        self.channel = channel
        self.directory = directory

    def take(self) -> list[TakenFile]:
        """Import what is waiting, oldest name first."""
        taken: list[TakenFile] = []
        for name in visible_files(self.directory)[:FILES_PER_PASS_MAX]:
            path = self.directory / name
            try:
                report = self.service.import_file(self.channel, path.read_bytes(), name,
                                                  actor=IMPORTER)
            except FundpoolError as error:
                if error.code == "duplicate_statement":
                    self._move(path, IMPORTED)
                    taken.append(TakenFile(name, "duplicate"))
                    continue
                log.error("statement_refused", channel=self.channel, file=name,
                          code=error.code, detail=error.detail)
                target = self._move(path, REFUSED)
                write_atomically(target.with_name(target.name + ".why.txt"),
                                 f"{error.code}: {error.detail}\n{error.facts}\n".encode())
                taken.append(TakenFile(name, error.code))
                continue
            self._move(path, IMPORTED)
            log.info("statement_imported", channel=self.channel, file=name,
                     lines=report.file.lines, breaks=report.run.breaks)
            taken.append(TakenFile(name, "imported"))
        return taken

    def _move(self, path: Path, folder: str) -> Path:
        target = self.directory / folder / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        move_durably(path, target)
        return target
