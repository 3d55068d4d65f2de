"""Time parse+validate of the Starter Excel (goal: < 0.5 s for 200 persons). Measured, not
asserted.

    python benchmarks/starter_check.py [--runs N]

Writes a 200-person file (from the product template, like a customer would fill it) and a
file with 10,000 empty formatted rows into a temporary directory, then times
``read_starter_excel`` (sniff + openpyxl read + validation) on each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.styles import PatternFill

from smartpraxx_provision.domain.lanr import lanr_check_digit
from smartpraxx_provision.domain.seats import billable_seats
from smartpraxx_provision.starter import read_starter_excel
from smartpraxx_provision.starter.template import write_template

ROLES = ["Praxisinhaber:in"] * 4 + ["Ärzt:in"] * 36 + ["MFA"] * 140 + ["Auszubildende:r"] * 20


def make_file(path: Path, persons: int, empty_formatted_rows: int = 0) -> Path:
    write_template(path)
    wb = load_workbook(path)
    praxis = wb["Praxis"]
    values = {
        "Praxisname": "mvz-benchmark", "Anzeigename": "MVZ Benchmark",
        "Praxisart": "MVZ", "BSNR": "381234500", "KV": "KV Nordrhein",
        "Fachrichtungen": "Allgemeinmedizin, Innere Medizin, Kardiologie",
        "Bestellnummer": "BENCH-1", "Kontakt E-Mail": "bench@mvz.example",
    }
    for row in range(1, praxis.max_row + 1):
        label = str(praxis.cell(row, 1).value).rstrip("*")
        if label in values:
            praxis.cell(row, 2, values[label])
    ws = wb["Mitarbeitende"]
    for i in range(persons):
        role = ROLES[i % len(ROLES)]
        first = f"{200000 + i:06d}"
        lanr = f"{first}{lanr_check_digit(first)}01" if role in ROLES[:40] else None
        ws.append([f"Vorname{i}", f"Nachname{i}", f"p{i}@mvz.example", None, role,
                   "Empfang, Abrechnung" if role == "MFA" else None, lanr, None, None])
    fill = PatternFill("solid", fgColor="FFFF00")
    start = ws.max_row + 1
    for row in range(start, start + empty_formatted_rows):
        for col in range(1, 10):
            ws.cell(row, col).fill = fill
    wb.save(path)
    return path


def measure(path: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = read_starter_excel(path)
        times.append(time.perf_counter() - start)
        if not result.ok:
            raise SystemExit(f"benchmark file does not validate: {result.errors[:3]}")
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="smartpraxx-bench-") as tmp:
        cases = {
            "200 persons": make_file(Path(tmp) / "p200.xlsx", 200),
            "200 persons + 10,000 empty formatted rows":
                make_file(Path(tmp) / "p200-empty.xlsx", 200, empty_formatted_rows=10_000),
        }
        for name, path in cases.items():
            times = measure(path, args.runs)
            spec = read_starter_excel(path).spec
            assert spec is not None
            print(f"{name}: {path.stat().st_size / 1024:.0f} KiB, {len(spec.persons)} persons, "
                  f"{billable_seats(spec)} seats; parse+validate over {args.runs} runs: "
                  f"min {min(times):.3f} s, median {statistics.median(times):.3f} s, "
                  f"max {max(times):.3f} s (goal < 0.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
