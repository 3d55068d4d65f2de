"""Read the cells of a Starter Excel (.xlsx) safely and fast.

- The file type is sniffed from its bytes, so ``.xls``, ``.ods``, ``.csv``, encrypted
  (password-protected) and corrupt files get a clear message naming the expected format.
- openpyxl reads in ``read_only`` mode with ``data_only=True``: formulas yield their cached
  value; a formula without a cached value is an error. openpyxl parses with ``defusedxml``
  (a dependency), which refuses entity declarations: an XML bomb is reported, not expanded.
- One pass per sheet through openpyxl's worksheet parser also yields merged ranges and
  hidden rows/columns (the read-only worksheet API does not expose them), and skips empty
  formatted cells cheaply, so 10,000 empty formatted rows stay fast. This uses openpyxl
  3.1 internals (``WorkSheetParser``): the public read-only worksheet exposes neither merged
  ranges, hidden rows/columns nor whether a formula has a cached value, and the public
  full-load worksheet needs two loads (formulas and values) and builds every formatted cell.
  So the dependency stays pinned to ``<3.2`` (no 3.2 exists to test against; 3.1.5 is the
  newest) and the unit tests cover each of these paths.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from xml.etree.ElementTree import ParseError

import openpyxl
from defusedxml import DefusedXmlException
from openpyxl.utils.cell import get_column_letter, range_boundaries
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS

from ..domain.catalog import match_key
from .report import ERROR, WARNING, Problem

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
EXPECTED = (
    "an Excel workbook (.xlsx, 'Excel-Arbeitsmappe'); in Excel, LibreOffice or Numbers use "
    "'Speichern unter' / 'Exportieren' → 'Excel-Arbeitsmappe (.xlsx)'"
)

_FORMULA_TAG = f"{{{SHEET_MAIN_NS}}}f"
_VALUE_TAG = f"{{{SHEET_MAIN_NS}}}v"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class UnreadableFile(Exception):
    """The file as a whole cannot be read; ``problem`` says why and what is expected."""

    def __init__(self, message: str, hint: str = EXPECTED) -> None:
        super().__init__(message)
        self.problem = Problem(ERROR, message, label="file", hint=hint)


@dataclass
class SheetData:
    """The non-empty cells of one sheet plus what the reader noticed about it."""

    title: str
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)  # (row, col) -> value
    hidden_rows: set[int] = field(default_factory=set)
    hidden_cols: set[int] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    hidden_sheet: bool = False

    def row_values(self, row: int) -> dict[int, Any]:
        return {c: v for (r, c), v in self.cells.items() if r == row}

    def rows(self) -> dict[int, dict[int, Any]]:
        out: dict[int, dict[int, Any]] = {}
        for (r, c), v in sorted(self.cells.items()):
            out.setdefault(r, {})[c] = v
        return out


@dataclass
class WorkbookData:
    sheet_titles: list[str]
    sheets: dict[str, SheetData]  # by the wanted (canonical) sheet name


class _Parser(WorkSheetParser):  # type: ignore[misc]
    """openpyxl's sheet parser, recording formulas without a cached value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uncached: list[str] = []

    def parse_cell(self, element: Any) -> Any:
        if len(element) == 0 and element.get("t") != "inlineStr":
            # an empty (possibly formatted) cell: nothing to read
            if element.get("r") is None:
                self.col_counter += 1
            return None
        cell = super().parse_cell(element)
        if element.find(_FORMULA_TAG) is not None and self._uncached(element):
            self.uncached.append(f"{get_column_letter(cell['column'])}{cell['row']}")
        return cell

    @staticmethod
    def _uncached(element: Any) -> bool:
        """No cached result: no ``<v>``, or an empty one on a non-string cell (an empty
        string result is written as ``t="str"`` with an empty ``<v>``)."""
        value = element.find(_VALUE_TAG)
        if value is None:
            return True
        return not value.text and element.get("t") not in ("str", "s", "inlineStr")


def sniff(path: Path) -> None:
    """Raise UnreadableFile unless ``path`` looks like an unencrypted .xlsx workbook."""
    if not path.exists():
        raise UnreadableFile(f"file {path.name} does not exist", hint="check the path")
    if not path.is_file():
        raise UnreadableFile(f"{path.name} is not a file", hint="pass the .xlsx file")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile("the file is empty (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise UnreadableFile(
            f"the file is {size // (1024 * 1024)} MB; a Starter Excel is far below "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MB"
        )
    data = path.read_bytes()
    if data.startswith(_OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise UnreadableFile(
                "the file is password-protected (encrypted); it cannot be read",
                hint="open it, remove the password (Datei → Informationen → Arbeitsmappe "
                "schützen → Mit Kennwort verschlüsseln: Kennwort leeren) and save as .xlsx",
            )
        raise UnreadableFile("the file is in the old Excel 97-2003 format (.xls)")
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
                unpacked = sum(info.file_size for info in zf.infolist())
                mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UnreadableFile(f"the file is damaged (not a readable ZIP/xlsx: {exc})") from exc
        if b"opendocument.spreadsheet" in mimetype:
            raise UnreadableFile("the file is an OpenDocument spreadsheet (.ods)")
        if "xl/workbook.xml" not in names:
            kind = "a Word document" if "word/document.xml" in names else "a ZIP archive"
            raise UnreadableFile(f"the file is {kind}, not an Excel workbook")
        if unpacked > MAX_UNPACKED_BYTES:
            raise UnreadableFile(
                f"the workbook unpacks to {unpacked // (1024 * 1024)} MB (a ZIP bomb?); "
                "it was not read"
            )
        return
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text) / max(len(text), 1)
    if printable > 0.95 and text.lstrip().startswith("<"):
        raise UnreadableFile("the file is an XML/HTML document, not an .xlsx workbook")
    if printable > 0.95 and any(sep in text for sep in ",;\t"):
        raise UnreadableFile("the file is a CSV/text file, not an Excel workbook")
    raise UnreadableFile("the file is not an Excel .xlsx workbook (unknown format)")


def _plain(value: Any) -> Any:
    """Cell value with whitespace-only strings as None and dates as ISO text."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return value


def _is_hidden(attrs: dict[str, str]) -> bool:
    return attrs.get("hidden", "0").lower() in ("1", "true")


def _read_sheet(wb: Any, ws: Any, title: str) -> SheetData:
    sheet = SheetData(title=title, hidden_sheet=ws.sheet_state != "visible")
    src = ws._get_source()
    try:
        parser = _Parser(
            src,
            ws._shared_strings,
            data_only=True,
            epoch=wb.epoch,
            date_formats=wb._date_formats,
            timedelta_formats=wb._timedelta_formats,
        )
        for _row_idx, cells in parser.parse():
            for cell in cells:
                if cell is None:
                    continue
                value = _plain(cell["value"])
                if value is None:
                    continue
                coord = (cell["row"], cell["column"])
                if cell["data_type"] == "e":
                    sheet.problems.append(Problem(
                        ERROR, f"the cell holds the spreadsheet error value {value}",
                        sheet=title, cell=cell_ref(*coord),
                        hint="fix the formula or type the value"))
                    continue
                sheet.cells[coord] = value
    finally:
        src.close()
    for ref in parser.uncached:
        sheet.problems.append(Problem(
            ERROR, "formula without a saved result (the file was written by a program that "
            "does not calculate)", sheet=title, cell=ref,
            hint="open the file in Excel or LibreOffice and save it again, or type the value"))
    for row, attrs in parser.row_dimensions.items():
        if _is_hidden(attrs):
            sheet.hidden_rows.add(int(row))
    for attrs in parser.column_dimensions.values():
        if _is_hidden(attrs):
            lo, hi = int(attrs.get("min", 0)), int(attrs.get("max", 0))
            sheet.hidden_cols.update(range(lo, min(hi, 200) + 1))
    merges = parser.merged_cells.mergeCell if parser.merged_cells is not None else []
    for merge in merges:
        _apply_merge(sheet, str(merge.ref))
    _warn_hidden(sheet)
    return sheet


def cell_ref(row: int, col: int) -> str:
    """``E7`` for row 7, column 5."""
    return f"{get_column_letter(col)}{row}"


def _apply_merge(sheet: SheetData, ref: str) -> None:
    """A merged range's value lives in its top-left cell. Copy it down the first column
    (a vertical merge means "same value for these rows"); other columns stay empty."""
    min_col, min_row, _max_col, max_row = range_boundaries(ref)
    if max_row == min_row:
        return
    value = sheet.cells.get((min_row, min_col))
    if value is None:
        return
    for row in range(min_row + 1, max_row + 1):
        sheet.cells[(row, min_col)] = value
    sheet.problems.append(Problem(
        WARNING, f"merged cells {ref}: the value of {cell_ref(min_row, min_col)} is used for "
        f"rows {min_row}–{max_row}", sheet=sheet.title, cell=ref,
        hint="unmerge the cells and fill in every row"))


def _warn_hidden(sheet: SheetData) -> None:
    rows_with_data = {r for r, _ in sheet.cells}
    for row in sorted(sheet.hidden_rows & rows_with_data):
        sheet.problems.append(Problem(
            WARNING, f"row {row} is hidden but holds data; it is read like every other row",
            sheet=sheet.title, cell=f"{row}:{row}",
            hint="unhide the row and delete it if it should not count"))
    cols_with_data = {c for _, c in sheet.cells}
    for col in sorted(sheet.hidden_cols & cols_with_data):
        letter = get_column_letter(col)
        sheet.problems.append(Problem(
            WARNING, f"column {letter} is hidden but holds data; it is read like every other "
            "column", sheet=sheet.title, cell=f"{letter}:{letter}",
            hint="unhide the column and delete it if it should not count"))


def read_workbook(path: Path, wanted: tuple[str, ...]) -> WorkbookData:
    """Read the sheets named in ``wanted`` (matched case-insensitively).

    Raises ``UnreadableFile`` for anything that is not a readable .xlsx workbook.
    """
    sniff(path)
    if not openpyxl.DEFUSEDXML:
        raise UnreadableFile(
            "XML protection is off (defusedxml not installed or OPENPYXL_DEFUSEDXML set); "
            "refusing to read untrusted files",
            hint="pip install defusedxml and unset OPENPYXL_DEFUSEDXML",
        )
    try:
        with path.open("rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
            try:
                titles = list(wb.sheetnames)
                by_key = {match_key(t): t for t in reversed(titles)}
                sheets: dict[str, SheetData] = {}
                for name in wanted:
                    title = by_key.get(match_key(name))
                    if title is not None:
                        sheets[name] = _read_sheet(wb, wb[title], title)
            finally:
                wb.close()
    except Exception as exc:  # openpyxl wraps parser errors in ValueError: look at causes
        _raise_unreadable(exc)
    return WorkbookData(sheet_titles=titles, sheets=sheets)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _raise_unreadable(exc: Exception) -> NoReturn:
    """Turn what openpyxl raises for a bad workbook into UnreadableFile (else re-raise)."""
    chain = _causes(exc)
    defused = [e for e in chain if isinstance(e, DefusedXmlException)]
    if defused:
        raise UnreadableFile(
            "the file contains XML entity declarations (a possible XML bomb) and was "
            f"refused ({type(defused[0]).__name__})",
            hint="save the workbook again with Excel or LibreOffice as .xlsx",
        ) from exc
    damaged = (zipfile.BadZipFile, KeyError, ParseError, InvalidFileException, EOFError)
    for cause in chain:
        if isinstance(cause, damaged):
            raise UnreadableFile(
                f"the workbook is damaged ({type(cause).__name__}: {str(cause)[:200]})"
            ) from exc
    if isinstance(exc, (TypeError, ValueError, AttributeError, IndexError)):
        raise UnreadableFile(
            f"the workbook has content openpyxl cannot read ({type(exc).__name__})",
            hint="open it in Excel or LibreOffice and save it again as .xlsx",
        ) from exc
    raise exc

