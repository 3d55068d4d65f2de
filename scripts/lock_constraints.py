"""Write constraints.txt: the exact versions of every (transitive) dependency of
smartpraxx-provision[dev,fleet] (dev includes the postgres and vault extras) as installed here. Run after upgrading and a green `make test`;
`make install` (and so CI) installs with `-c constraints.txt`, so a fresh machine gets the
versions CI tested."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = "smartpraxx-provision"


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: set[str]) -> dict[str, str]:
    seen: dict[str, tuple[str, set[str]]] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = _key(name)
        if key in seen and wanted <= seen[key][1]:
            continue
        seen[key] = (dist.version, seen.get(key, ("", set()))[1] | wanted)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not any(
                req.marker.evaluate({"extra": e}) for e in (wanted or {""}) | {""}
            ):
                continue
            todo.append((req.name, set(req.extras)))
    return {k: v for k, (v, _) in seen.items() if k != _key(root)}


def main() -> None:
    pins = closure(ROOT, {"dev", "fleet", "postgres", "vault"})
    Path("constraints.txt").write_text(
        "# Versions CI tested; installs use `pip install -c constraints.txt`.\n"
        "# Refresh: make lock (after upgrading and running make test).\n"
        + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items()))
    )
    print(f"constraints.txt: {len(pins)} pins")


if __name__ == "__main__":
    main()
