"""The practices in the inventory, as ``practices list`` shows them (practice-level facts only)."""

from __future__ import annotations

from ..inventory.models import PracticeRecord
from .context import OpContext


def list_practices(ctx: OpContext, *, include_tombstoned: bool = False) -> list[PracticeRecord]:
    """Practices by host and slot number; decommissioned ones only with ``include_tombstoned``."""
    return ctx.inventory.list_practices(include_tombstoned=include_tombstoned)
