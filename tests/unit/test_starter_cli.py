"""`starter check` / `starter template` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartpraxx_provision.cli import main
from tests.conftest import SAMPLES
from tests.unit._xlsx import PEOPLE, build

GP = SAMPLES / "hausarztpraxis-mueller.xlsx"
STAFF = ["Anna", "Müller", "anna.mueller@praxis-mueller.example", "Hoffmann", "Yılmaz"]


def test_check_valid_sample_prints_summary_without_staff_data(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["starter", "check", str(GP)]) == 0
    out = capsys.readouterr().out
    for fact in ("praxis-mueller", "'Hausarztpraxis Dr. Müller & Kollegen'",
                 "KV Rheinland-Pfalz", "allgemeinmedizin (Allgemeinmedizin)",
                 "Praxisinhaber:in 2", "MFA 3", "billable seats: 3", "spreed, deck",
                 "'Dienstplanung'", "OK: 0 warning(s)"):
        assert fact in out
    for secret in STAFF:
        assert secret not in out.replace("Dr. Müller", "")


def test_check_show_people(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["starter", "check", str(GP), "--show-people"]) == 0
    out = capsys.readouterr().out
    assert "Anna Müller <anna.mueller@praxis-mueller.example> anna.mueller" in out


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["starter", "check", str(GP), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["errors"] == [] and "people" not in doc
    assert doc["summary"]["billable_seats"] == 3
    assert doc["summary"]["persons_by_role"]["Praxisinhaber:in"] == 2
    assert "Anna" not in json.dumps(doc)


def test_check_errors_exit_2_and_hide_personal_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build(tmp_path / "bad.xlsx", people=[
        *PEOPLE, ["Cem", "Kaya", "cem(at)test.example", "MFA", None, None, None]])
    assert main(["starter", "check", str(path)]) == 2
    out = capsys.readouterr().out
    assert "Mitarbeitende!C4 (E-Mail): not a valid e-mail address" in out
    assert "cem(at)test.example" not in out and "FAILED: 1 error(s)" in out
    assert main(["starter", "check", str(path), "--json", "--show-people"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["errors"][0]["value"] == "cem(at)test.example"
    assert doc["errors"][0]["cell"] == "C4"


def test_check_non_xlsx_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a;b\n1;2\n")
    assert main(["starter", "check", str(path)]) == 2
    assert "CSV" in capsys.readouterr().out


def test_template_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "neu.xlsx"
    assert main(["starter", "template", str(out)]) == 0
    assert out.stat().st_size > 0
    assert main(["starter", "template", str(out)]) == 2  # exists
    assert "--force" in capsys.readouterr().err
    assert main(["starter", "template", str(out), "--force"]) == 0
    assert main(["starter", "template", str(tmp_path / "neu.xls")]) == 2
