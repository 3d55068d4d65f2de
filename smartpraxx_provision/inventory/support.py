"""The central copy of support consents (migration 0008): per practice and ticket only the
state and the expiry, so the sweep knows which realms to look at. No person is recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .store import Inventory, _dt, _ts


@dataclass(frozen=True)
class CentralConsent:
    practice_id: str
    ticket: str
    state: str
    expires_at: datetime | None


class SupportBook:
    def __init__(self, inventory: Inventory) -> None:
        self.inv = inventory

    def put(self, practice_id: str, ticket: str, state: str, expires_at: datetime | None,
            ) -> None:
        now = _ts(datetime.now(UTC))
        exp = _ts(expires_at) if expires_at else None
        with self.inv._tx(write=True) as tx:
            changed = tx.execute(
                "UPDATE support_consents SET state = ?, expires_at = ?, updated_at = ? "
                "WHERE practice_id = ? AND ticket = ?",
                (state, exp, now, practice_id, ticket))
            if not changed:
                tx.execute(
                    "INSERT INTO support_consents (practice_id, ticket, state, expires_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?)",
                    (practice_id, ticket, state, exp, now))

    def get(self, practice_id: str, ticket: str) -> CentralConsent | None:
        with self.inv._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM support_consents WHERE practice_id = ? AND ticket = ?",
                            (practice_id, ticket))
        return _row(rows[0]) if rows else None

    def open_consents(self) -> list[CentralConsent]:
        """Pending and approved ones (what the sweep has to look at)."""
        with self.inv._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM support_consents WHERE state IN ('pending', "
                            "'approved') ORDER BY practice_id, ticket")
        return [_row(r) for r in rows]

    def of_practice(self, practice_id: str) -> list[CentralConsent]:
        with self.inv._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM support_consents WHERE practice_id = ? "
                            "ORDER BY ticket", (practice_id,))
        return [_row(r) for r in rows]


def _row(row: dict[str, object]) -> CentralConsent:
    return CentralConsent(practice_id=str(row["practice_id"]), ticket=str(row["ticket"]),
                          state=str(row["state"]),
                          expires_at=_dt(row["expires_at"] if row["expires_at"] else None))  # type: ignore[arg-type]
