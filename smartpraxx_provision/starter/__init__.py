"""The Starter Excel: read + validate into a ``PracticeSpec``; write the empty template.

``read_starter_excel(path)`` never raises for bad input: every problem is in the result.
``load_practice_spec(path)`` is the strict form for operations (raises StarterExcelError).
The file is read-only input; staff data in it is never logged.
"""

from __future__ import annotations

from pathlib import Path

from ..domain.model import PracticeSpec
from ..errors import StarterExcelError
from .reader import UnreadableFile, read_workbook
from .report import Problem, StarterResult
from .validate import WANTED_SHEETS, validate_workbook


def read_starter_excel(path: Path) -> StarterResult:
    """Parse and validate ``path``; all errors and warnings at once."""
    path = Path(path)
    try:
        workbook = read_workbook(path, WANTED_SHEETS)
    except UnreadableFile as exc:
        return StarterResult(source=path.name, errors=[exc.problem])
    return validate_workbook(workbook, path.name)


def load_practice_spec(path: Path) -> PracticeSpec:
    """The validated spec, or StarterExcelError(report=StarterResult) naming the problems."""
    result = read_starter_excel(path)
    if result.spec is None or result.errors:
        first = result.errors[0] if result.errors else None
        detail = f" (first: {first.where}: {first.message})" if first else ""
        count = len(result.errors)
        raise StarterExcelError(
            f"Starter Excel {Path(path).name} has {count} error{'s' if count != 1 else ''}"
            + detail,
            report=result,
            obj=str(path),
            hint=f"run: smartpraxx-provision starter check {path}",
        )
    return result.spec


__all__ = ["Problem", "StarterResult", "load_practice_spec", "read_starter_excel"]
