"""Output helpers of Nextcloud's occ ``Base`` command, re-implemented (stand-in, test double).

``--output=plain|json|json_pretty`` as in ``OC\\Core\\Command\\Base``: PHP's ``json_encode``
(escaped slashes, ``\\uXXXX`` for non-ASCII, 4-space pretty print) and the ``  - key: value``
plain lists.
"""

from __future__ import annotations

import json
from typing import Any, TextIO


def php_json(value: Any, pretty: bool = False) -> str:
    """PHP ``json_encode($value[, JSON_PRETTY_PRINT])``."""
    text = json.dumps(value, ensure_ascii=True, indent=4 if pretty else None,
                      separators=(",", ": ") if pretty else (",", ":"))
    return text.replace("/", "\\/")


def php_string(value: Any) -> str:
    """PHP's string cast for scalars (``(string)1.0 === "1"``)."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)


def value_to_string(value: Any, return_null: bool = True) -> str | None:
    """``Base::valueToString``."""
    if value is False:
        return "false"
    if value is True:
        return "true"
    if value is None:
        return None if return_null else "null"
    return php_string(value)


class Out:
    """stdout of one occ run; ``-q`` silences normal output like Symfony's VERBOSITY_QUIET."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet

    def line(self, text: str = "") -> None:
        if not self.quiet:
            self.stream.write(text + "\n")


def write_array(out: Out, fmt: str | None, items: Any, prefix: str = "  - ") -> None:
    """``Base::writeArrayInOutputFormat``."""
    if fmt == "json":
        out.line(php_json(items))
        return
    if fmt == "json_pretty":
        out.line(php_json(items, pretty=True))
        return
    pairs = enumerate(items) if isinstance(items, list) else items.items()
    for key, item in pairs:
        if isinstance(item, (list, dict)):
            out.line(f"{prefix}{key}:")
            write_array(out, fmt, item, "  " + prefix)
        elif isinstance(key, int):
            out.line(f"{prefix}{value_to_string(item) or ''}")
        else:
            text = value_to_string(item)
            out.line(f"{prefix}{key}: {text}" if text is not None else f"{prefix}{key}")


def write_mixed(out: Out, fmt: str | None, item: Any) -> None:
    """``Base::writeMixedInOutputFormat``."""
    if isinstance(item, (list, dict)):
        write_array(out, fmt, item, "")
    elif fmt in ("json", "json_pretty"):
        out.line(php_json(item))
    else:
        out.line(value_to_string(item, return_null=False) or "")


def table(out: Out, headers: list[str], rows: list[list[str]]) -> None:
    """Symfony's ``Table`` in the default style."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(cells: list[str]) -> str:
        return "|" + "|".join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)) + "|"

    out.line(sep)
    out.line(fmt(headers))
    out.line(sep)
    for row in rows:
        out.line(fmt(row))
    out.line(sep)
