"""Hot reload: the rules in force, taken again from their file when it changes.

The engine calls `AlertRules.check()` at every evaluation. A changed file that loads is in
force from then on; one that does not load (bad YAML, a bad rule, deleted, unreadable) leaves
the rules in force as they were, with the problem in `last_error`, logged once per bad version
(docs/monitoring-alerts.md, "Hot reload").
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import structlog

from fundpool.monitoring.alerting.rules import (
    InvalidAlertRules,
    RuleSet,
    load_rules,
    load_rules_file,
    read_rules_text,
)

log = structlog.get_logger(__name__)


class AlertRules:
    """The rules in force, from a file checked again on every `check()` (the engine calls it
    at each evaluation): a changed file is loaded; one that does not load leaves the rules in
    force unchanged, with the problem in `last_error` (and logged once per bad version).

    `strict` (the default): the first load must succeed, or `invalid_alert_rules` is raised.
    Otherwise the holder starts with no rules (`current` is None) and the error kept."""

    def __init__(self, path: str | Path | None = None, *, text: str | None = None,
                 strict: bool = True) -> None:
        if (path is None) == (text is None):
            raise ValueError("AlertRules takes a path or a text")
        self.path = None if path is None else Path(path)
        self.current: RuleSet | None = None
        self.last_error: str | None = None
        self.reloads = 0  # new rule sets taken after the first
        self._lock = threading.Lock()
        self._bad_digest: str | None = None
        if text is not None:
            self.current = load_rules(text)
            return
        try:
            self._take(self._load())
        except InvalidAlertRules as error:
            if strict:
                raise
            self._fail(error)

    def _load(self) -> RuleSet:
        assert self.path is not None
        return load_rules_file(self.path)

    def _take(self, rules: RuleSet) -> None:
        if self.current is not None:
            self.reloads += 1
        self.current = rules
        self.last_error = None
        self._bad_digest = None

    def _fail(self, error: InvalidAlertRules) -> None:
        self.last_error = error.detail
        log.error("alert rules not loaded; the rules in force stay", source=str(self.path),
                  error=error.detail, rules_in_force=None if self.current is None else
                  self.current.digest[:12])

    @property
    def loaded(self) -> bool:
        return self.current is not None

    def check(self) -> bool:
        """Load the file again if its content changed; True when new rules were taken."""
        if self.path is None:
            return False
        with self._lock:
            try:
                text = read_rules_text(self.path)
            except InvalidAlertRules as error:
                if self.last_error != error.detail:
                    self._fail(error)
                return False
            digest = hashlib.sha256(text.encode()).hexdigest()
            if self.current is not None and digest == self.current.digest:
                self.last_error = None  # a broken edit undone
                self._bad_digest = None
                return False
            if digest == self._bad_digest:
                return False
            try:
                rules = load_rules(text, source=str(self.path))
            except InvalidAlertRules as error:
                self._bad_digest = digest
                self._fail(error)
                return False
            self._take(rules)
            log.info("alert rules loaded", source=str(self.path), digest=digest[:12],
                     rules=len(rules.thresholds), slos=len(rules.slos))
            return True

    def reload(self) -> bool:
        """Load the file now (same as `check`: an unchanged file is not parsed again)."""
        return self.check()

