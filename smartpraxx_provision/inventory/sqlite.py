"""Embedded inventory backend: one SQLite file under the state dir.

WAL journal (readers never block the writer), foreign keys on, a busy timeout so that
concurrent processes wait for each other instead of failing. Write transactions are
``BEGIN IMMEDIATE``: they take the database's single write lock up front, which serialises
allocation across processes on this machine. The file must stay on a local file system
(SQLite's locking is unreliable on NFS); a team shares a PostgreSQL inventory instead.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InventoryError
from .backend import IntegrityViolation, Tx

BUSY_TIMEOUT_SECONDS = 60.0


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self._run(sql, params).fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(sql, params).rowcount

    def _run(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc


class SQLiteBackend:
    name = "sqlite"
    auto_id = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = sqlite3.connect(
                str(path),
                timeout=busy_timeout,
                isolation_level=None,  # explicit BEGIN/COMMIT below
                check_same_thread=False,  # the Inventory serialises access with a lock
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
        except (OSError, sqlite3.Error) as exc:
            raise InventoryError(
                f"inventory {path} cannot be opened: {exc}",
                obj=str(path),
                hint="check the state dir (--state-dir) and its permissions",
            ) from exc
        self._conn = conn

    def describe(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Tx]:
        try:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as exc:
            raise InventoryError(
                f"inventory {self.path} is busy or unreadable: {exc}",
                obj=str(self.path),
                hint="another smartpraxx-provision process holds the inventory; retry",
            ) from exc
        try:
            yield _SQLiteTx(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise InventoryError(
                f"inventory {self.path}: commit failed: {exc}", obj=str(self.path)
            ) from exc

    def close(self) -> None:
        self._conn.close()
