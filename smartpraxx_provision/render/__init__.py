"""render."""

from .bundle import (
    SlotNames,
    desired_apps,
    desired_config,
    render_slot_bundle,
    slot_names,
    slot_secret_refs,
)

__all__ = [
    "SlotNames",
    "desired_apps",
    "desired_config",
    "render_slot_bundle",
    "slot_names",
    "slot_secret_refs",
]
