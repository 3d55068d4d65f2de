"""inventory: hosts, practices with immutable slots, operation lock + journal, events.

SQLite file under the state dir (embedded default) or PostgreSQL for a team of operators.
"""

from __future__ import annotations

from .models import Event, HostRecord, JournalEntry, OperationRecord, PracticeRecord
from .store import Inventory, open_inventory

__all__ = [
    "Event",
    "HostRecord",
    "Inventory",
    "JournalEntry",
    "OperationRecord",
    "PracticeRecord",
    "open_inventory",
]
