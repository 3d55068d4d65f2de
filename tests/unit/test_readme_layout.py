"""The README's layout section matches the tree: every package and module of
smartpraxx_provision/, every top-level folder and every folder under tests/ is named there,
and nothing named there as a folder is missing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "smartpraxx_provision"
DESCRIBED = ("adapters", "operations", "domain", "render", "inventory", "secrets", "devstack",
             "starter", "service")


def _layout() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def _named(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) is not None


def _tracked_dirs(under: Path) -> set[str]:
    files = subprocess.run(["git", "ls-files", str(under.relative_to(ROOT))], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    prefix = len(under.relative_to(ROOT).parts) if under != ROOT else 0
    return {Path(f).parts[prefix] for f in files if len(Path(f).parts) > prefix + 1}


def test_every_package_and_module_is_named() -> None:
    layout = _layout()
    modules = [p for p in PACKAGE.iterdir() if not p.is_symlink()  # _templates -> templates/
               and ((p.suffix == ".py" and p.stem != "__init__")
                    or (p.is_dir() and (p / "__init__.py").exists()))]
    missing = [p.name for p in modules if not _named(layout, p.name)]
    for sub in DESCRIBED:
        missing += [f"{sub}/{m.stem}" for m in sorted((PACKAGE / sub).glob("*.py"))
                    if m.stem != "__init__" and not _named(layout, m.stem)]
    assert not missing, f"README layout does not name: {', '.join(missing)}"


def test_every_top_level_and_tests_folder_is_named() -> None:
    layout = _layout()
    top = {d for d in _tracked_dirs(ROOT) if not d.startswith(".")}
    missing = sorted(d for d in top if not _named(layout, d + "/"))
    missing += sorted(f"tests/{d}" for d in _tracked_dirs(ROOT / "tests")
                      if not _named(layout, d + "/"))
    assert not missing, f"README layout does not name: {', '.join(missing)}"


def test_every_folder_named_at_the_top_exists() -> None:
    for line in _layout().splitlines():
        m = re.match(r"^([a-z_]+)/\s", line)
        if m:
            assert (ROOT / m.group(1)).is_dir(), m.group(1)
