"""What the inventory needs from a database: transactions that run parametrised SQL.

Both backends take SQL written with ``?`` placeholders and return rows as dicts. A *write*
transaction is exclusive across every process that shares the inventory (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory lock), so the check-then-insert
logic of slot allocation, renames and the operation lock cannot interleave.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol


class IntegrityViolation(Exception):
    """A constraint of the schema refused a write (unique, foreign key, check)."""


class Tx(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a statement and return its rows."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return the number of rows it changed."""


class Backend(Protocol):
    name: str
    auto_id: str  # column type of an auto-increment integer primary key

    def transaction(self, *, write: bool) -> contextlib.AbstractContextManager[Tx]:
        """A transaction; ``write=True`` is exclusive across processes."""

    def describe(self) -> str:
        """Where the inventory lives (for messages; never contains a password)."""

    def close(self) -> None: ...


def split_statements(script: str) -> Iterator[str]:
    """Statements of a migration script: ``;`` at a line end ends one; ``--`` comments dropped."""
    statement: list[str] = []
    for raw in script.splitlines():
        line = raw.split("--", 1)[0].rstrip()
        if line:
            statement.append(line)
        if line.endswith(";"):
            yield "\n".join(statement)[:-1]
            statement = []
    if statement:
        yield "\n".join(statement)
