"""Whole-file bad input: every case is a real file → one clear error, never a traceback."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import msoffcrypto.format.ooxml
import olefile
import openpyxl
import pytest

from smartpraxx_provision.errors import StarterExcelError
from smartpraxx_provision.starter import load_practice_spec, read_starter_excel
from tests.unit._xlsx import build


def rewrite_member(path: Path, member: str, change: Callable[[bytes], bytes]) -> Path:
    """Rewrite one part of an .xlsx (a real ZIP) in place."""
    with zipfile.ZipFile(path) as zin:
        parts = {info.filename: zin.read(info.filename) for info in zin.infolist()}
    parts[member] = change(parts[member])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in parts.items():
            zout.writestr(name, data)
    return path


def sheet_member(path: Path, title: str) -> str:
    wb = openpyxl.load_workbook(path)
    index = wb.sheetnames.index(title) + 1
    return f"xl/worksheets/sheet{index}.xml"


def ole_file(streams: dict[str, bytes]) -> bytes:
    """A minimal genuine OLE2 compound file (the .xls / encrypted-Office container).

    Streams must be >= 4096 bytes so they live in regular sectors (no mini stream).
    """
    sector = 512
    free, end, fat_sect, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    fat: list[int] = [fat_sect, end]  # sector 0: FAT, sector 1: directory
    data = b""
    starts = []
    for content in streams.values():
        assert len(content) >= 4096 and len(content) % sector == 0
        first = len(fat)
        count = len(content) // sector
        fat.extend(range(first + 1, first + count))
        fat.append(end)
        starts.append(first)
        data += content
    assert len(fat) <= sector // 4
    fat += [free] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        encoded = name.encode("utf-16-le") + b"\0\0"
        return (encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", nostream, right, child) + b"\0" * 16 + b"\0" * 4
                + b"\0" * 16 + struct.pack("<IQ", start, size))

    names = list(streams)
    dir_entries = [entry("Root Entry", 5, 1, nostream, end, 0)]
    for i, name in enumerate(names):
        right = i + 2 if i + 1 < len(names) else nostream
        dir_entries.append(entry(name, 2, nostream, right, starts[i], len(streams[name])))
    directory = b"".join(dir_entries).ljust(sector, b"\0")
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    assert len(header) == sector
    return header + struct.pack(f"<{sector // 4}I", *fat) + directory + data


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    return build(tmp_path / "valid.xlsx")


def _only_error(path: Path) -> str:
    result = read_starter_excel(path)
    assert result.spec is None and not result.ok
    assert len(result.errors) == 1, result.errors
    problem = result.errors[0]
    assert problem.where == "file"
    assert problem.hint
    return f"{problem.message} | {problem.hint}"


def test_valid_file_reads(valid: Path) -> None:
    result = read_starter_excel(valid)
    assert result.ok and result.spec is not None and not result.warnings


def test_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _only_error(tmp_path / "nope.xlsx")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    assert "empty" in _only_error(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.xlsx"
    path.write_bytes(bytes(range(256)) * 8)
    assert "not an Excel .xlsx workbook" in _only_error(path)


def test_truncated_xlsx_is_damaged(valid: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.xlsx"
    path.write_bytes(valid.read_bytes()[: valid.stat().st_size // 2])
    assert "damaged" in _only_error(path)


def test_zip_without_workbook_part(tmp_path: Path) -> None:
    path = tmp_path / "brief.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<document/>")
    assert "Word document" in _only_error(path)


def test_workbook_with_broken_xml_is_damaged(valid: Path) -> None:
    rewrite_member(valid, "xl/workbook.xml", lambda data: data[: len(data) // 2])
    assert "damaged" in _only_error(valid)


def test_password_protected_xlsx(valid: Path, tmp_path: Path) -> None:
    path = tmp_path / "geheim.xlsx"
    with valid.open("rb") as plain, path.open("wb") as out:
        msoffcrypto.format.ooxml.OOXMLFile(plain).encrypt("geheim", out)
    message = _only_error(path)
    assert "password-protected" in message and "Kennwort" in message


def test_xls_97_2003(tmp_path: Path) -> None:
    path = tmp_path / "alt.xls"
    path.write_bytes(ole_file({"Workbook": b"\x09\x08" + b"\0" * 4094}))
    assert olefile.isOleFile(str(path))
    with olefile.OleFileIO(str(path)) as ole:
        assert ole.exists("Workbook")  # a genuine compound file
    message = _only_error(path)
    assert ".xls" in message and "Excel-Arbeitsmappe (.xlsx)" in message


def test_ods(tmp_path: Path) -> None:
    path = tmp_path / "calc.ods"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet",
                    compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", "<office:document-content/>")
    message = _only_error(path)
    assert ".ods" in message and ".xlsx" in message


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Vorname;Nachname;E-Mail\nAnna;Müller;anna@test.example\n", encoding="utf-8")
    message = _only_error(path)
    assert "CSV" in message and ".xlsx" in message


def test_xlsx_extension_does_not_matter(valid: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "Starter-Excel.XLSX.download"
    renamed.write_bytes(valid.read_bytes())
    assert read_starter_excel(renamed).ok


BOMB_DTD = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                       for i in range(1, 10))
            + b"]>")


@pytest.mark.parametrize("part", ["workbook", "sheet"])
def test_xml_bomb_is_refused(valid: Path, part: str) -> None:
    member = "xl/workbook.xml" if part == "workbook" else sheet_member(valid, "Praxis")

    def inject(data: bytes) -> bytes:
        body = data.split(b"?>", 1)[1] if data.startswith(b"<?xml") else data
        return BOMB_DTD + body.replace(b"<sheetData>", b"<sheetData><!-- &lol9; -->", 1)

    rewrite_member(valid, member, inject)
    message = _only_error(valid)
    assert "XML bomb" in message


def test_zip_bomb_size_is_refused(valid: Path) -> None:
    rewrite_member(valid, "docProps/app.xml", lambda data: data + b" " * (210 * 1024 * 1024))
    assert "unpacks to" in _only_error(valid)


def test_defusedxml_off_is_refused(valid: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openpyxl, "DEFUSEDXML", False)
    assert "XML protection is off" in _only_error(valid)


def test_formula_with_cached_value_is_used(tmp_path: Path) -> None:
    path = build(tmp_path / "f.xlsx", mutate=lambda wb: wb["Praxis"].__setitem__(
        "B8", '="SPX-"&1'))
    rewrite_member(path, sheet_member(path, "Praxis"), lambda data: data.replace(
        b'<c r="B8"><f>"SPX-"&amp;1</f><v /></c>',
        b'<c r="B8" t="str"><f>"SPX-"&amp;1</f><v>SPX-1</v></c>'))
    result = read_starter_excel(path)
    assert result.ok, result.errors
    assert result.spec is not None and result.spec.order_id == "SPX-1"


def test_formula_with_empty_string_result_is_not_uncached(tmp_path: Path) -> None:
    path = build(tmp_path / "f.xlsx", praxis_update={"Paket": '=IF(1,"","")'})
    rewrite_member(path, sheet_member(path, "Praxis"), lambda data: data.replace(
        b'<c r="B10"><f>IF(1,"","")</f><v /></c>', b'<c r="B10" t="str"><f>IF(1,"","")</f><v></v></c>'))
    result = read_starter_excel(path)
    assert result.ok, result.errors


def test_error_value_cell(tmp_path: Path) -> None:
    path = build(tmp_path / "e.xlsx", praxis_update={"Anzeigename": "=1/0"})
    rewrite_member(path, sheet_member(path, "Praxis"), lambda data: data.replace(
        b'<c r="B3"><f>1/0</f><v /></c>', b'<c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c>'))
    result = read_starter_excel(path)
    assert [p.where for p in result.errors] == ["Praxis!B3"]
    assert "#DIV/0!" in result.errors[0].message


def test_load_practice_spec_raises_with_report(tmp_path: Path) -> None:
    path = build(tmp_path / "bad.xlsx", praxis_update={"Praxisname": "Praxis Müller"})
    with pytest.raises(StarterExcelError) as info:
        load_practice_spec(path)
    err = info.value
    assert err.exit_code == 2
    assert "1 error" in err.message and "Praxis!B2" in err.message
    assert err.hint and "starter check" in err.hint
    assert err.report is not None and len(err.report.errors) == 1


def test_load_practice_spec_returns_spec(valid: Path) -> None:
    assert load_practice_spec(valid).praxisname == "praxis-test"


def test_read_is_read_only(valid: Path) -> None:
    before = valid.read_bytes()
    read_starter_excel(valid)
    assert valid.read_bytes() == before


def test_io_bytes_helper_roundtrip() -> None:
    # the OLE helper itself: olefile must list exactly our streams
    blob = ole_file({"EncryptionInfo": b"\0" * 4096, "EncryptedPackage": b"\1" * 4096})
    with olefile.OleFileIO(io.BytesIO(blob)) as ole:
        assert sorted("/".join(e) for e in ole.listdir()) == ["EncryptedPackage",
                                                             "EncryptionInfo"]
