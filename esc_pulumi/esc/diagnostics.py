"""Positions, ranges and diagnostics shared by every stage of the engine.

Diagnostics are data, never exceptions: every stage (syntax, expressions, evaluation) returns
them, so that a broken definition still yields everything that can be computed from it.
"""
from __future__ import annotations

import enum
from ._fast import Record


class Severity(enum.IntEnum):
    """Severity numbers match the ESC reference (hcl.DiagnosticSeverity)."""

    ERROR = 1
    WARNING = 2


class Pos(Record):
    """A position in a definition: 1-based line, 1-based column in code points, 0-based byte offset."""

    __slots__ = ("line", "column", "byte")
    line: int
    column: int
    byte: int


class Range(Record):
    """A span of a named environment's definition."""

    __slots__ = ("environment", "begin", "end")
    environment: str
    begin: Pos
    end: Pos


class Diagnostic(Record):
    """One problem found in a definition.

    ``path`` is the property path of the offending node in the document (``values.foo[0]``);
    ``range`` is ``None`` for problems without a location (YAML syntax errors).
    """

    __slots__ = ("severity", "summary", "range", "path", "location", "problem")
    _defaults = {"range": None, "path": "", "location": None, "problem": ""}
    _uncompared = frozenset({"location", "problem"})
    severity: Severity
    summary: str
    range: Range | None
    path: str
    # Where a problem without a range was found, for people: a YAML syntax error has no
    # subject in the reference (and its "line N" is yaml.v3's), but the parser knows the place.
    # ``problem`` is the summary without yaml.v3's "line N:" part. Not part of equality.
    location: Range | None
    problem: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        level = "error" if self.is_error else "warning"
        if self.range is None and self.location is not None:
            b = self.location.begin
            return f"{self.location.environment}:{b.line}:{b.column}: {level}: {self.problem or self.summary}"
        if self.range is None:
            return f"{level}: {self.summary}"
        b = self.range.begin
        return f"{self.range.environment}:{b.line}:{b.column}: {level}: {self.summary}"


def error(summary: str, range: Range | None = None, path: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, summary, range, path)


def warning(summary: str, range: Range | None = None, path: str = "") -> Diagnostic:
    return Diagnostic(Severity.WARNING, summary, range, path)


def has_errors(diags: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diags)
