"""Local images of the embedded stack: built once, reused, rebuilt when their sources change.

* ``smartpraxx/debian-base:bookworm``: ``debootstrap --variant=minbase bookworm`` from the
  Debian mirror of this machine's apt sources, tarred to ``cache_dir/images/`` and brought in
  with ``docker import``. No image registry is needed.
* FROM it: ``smartpraxx/debian-apt:dev`` (``images/apt``), which adds ``install-packages``,
  the one way the images install Debian packages;
* FROM that (build arg ``BASE_IMAGE``): ``smartpraxx/mariadb:dev``, ``smartpraxx/redis:dev``,
  ``smartpraxx/idp-gateway:dev`` (``images/mariadb``, ``images/redis``, ``images/idp-gateway``)
  and the Nextcloud stand-in test double ``smartpraxx/nextcloud-standin:dev``
  (``images/nextcloud-standin``, when its Dockerfile exists).

A service image carries the label ``de.smartpraxx.context-hash`` (its build context's files
plus the id of the image it is built FROM): present with the same hash = skipped; sources or base changed =
rebuilt. ``rebuild=True`` rebuilds the service images without cache, ``rebuild_base=True``
re-runs debootstrap.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adapters.docker_engine import DockerEngine
from ..config import Settings
from ..domain.ownership import LABEL_MANAGED
from ..errors import ExternalServiceError
from ..output import Reporter
from .engine import ensure_debootstrap, log_dir, which
from .service import run_logged

SUITE = "bookworm"
BASE_TAG = f"smartpraxx/debian-base:{SUITE}"
APT_TAG = "smartpraxx/debian-apt:dev"
MARIADB_TAG = "smartpraxx/mariadb:dev"
REDIS_TAG = "smartpraxx/redis:dev"
STANDIN_TAG = "smartpraxx/nextcloud-standin:dev"
IDP_GATEWAY_TAG = "smartpraxx/idp-gateway:dev"


def _tagged(tag: str, local_tag: str) -> str:
    """``repo:dev`` → ``repo:<local_tag>`` (the setting ``local_image_tag``)."""
    return f"{tag.rsplit(':', 1)[0]}:{local_tag}"
LABEL_CONTEXT_HASH = "de.smartpraxx.context-hash"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_TIMEOUT = 1800.0
IMAGES_DIR = Path(__file__).resolve().parent / "images"

BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]


@dataclass(frozen=True)
class ServiceImage:
    key: str
    tag: str
    context: Path
    optional: bool = False  # sources written by another part of the project
    base: str = "apt"  # the key of the image it is built FROM ("base": the Debian base)


def service_images(local_tag: str = "dev") -> list[ServiceImage]:
    return [
        ServiceImage("apt", _tagged(APT_TAG, local_tag), IMAGES_DIR / "apt", base="base"),
        ServiceImage("mariadb", _tagged(MARIADB_TAG, local_tag), IMAGES_DIR / "mariadb"),
        ServiceImage("redis", _tagged(REDIS_TAG, local_tag), IMAGES_DIR / "redis"),
        ServiceImage(
            "idp-gateway", _tagged(IDP_GATEWAY_TAG, local_tag), IMAGES_DIR / "idp-gateway"
        ),
        ServiceImage(
            "nextcloud-standin",
            _tagged(STANDIN_TAG, local_tag),
            IMAGES_DIR / "nextcloud-standin",
            True,
        ),
    ]


def image_tags(local_tag: str = "dev") -> dict[str, str]:
    """Every image key → tag this module manages."""
    return {"base": BASE_TAG, **{img.key: img.tag for img in service_images(local_tag)}}


# --- apt sources ---------------------------------------------------------------------------


@dataclass
class AptSource:
    uris: list[str]
    suites: list[str]
    components: list[str]
    signed_by: str | None = None
    types: list[str] = field(default_factory=lambda: ["deb"])


def _parse_deb822(text: str) -> list[AptSource]:
    out: list[AptSource] = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by")
        out.append(
            AptSource(
                uris=fields["uris"].split(),
                suites=fields.get("suites", "").split(),
                components=fields.get("components", "").split(),
                signed_by=signed if signed and "\n" not in signed else None,
                types=fields.get("types", "deb").split(),
            )
        )
    return out


def _parse_one_line(text: str) -> list[AptSource]:
    out: list[AptSource] = []
    uncommented = (raw.split("#", 1)[0].strip() for raw in text.splitlines())
    for line in filter(None, uncommented):
        signed = None
        m = re.match(r"^(deb|deb-src)\s+\[([^\]]*)\]\s+(.*)$", line)
        if m:
            kind, opts, rest = m.groups()
            for opt in opts.split():
                if opt.startswith("signed-by="):
                    signed = opt.split("=", 1)[1]
        else:
            kind, _, rest = line.partition(" ")
        parts = rest.split()
        if kind not in ("deb", "deb-src") or len(parts) < 2:
            continue
        out.append(AptSource([parts[0]], [parts[1]], parts[2:], signed, [kind]))
    return out


def read_apt_sources(root: Path = Path("/etc/apt")) -> list[AptSource]:
    """Enabled sources of ``sources.list`` and ``sources.list.d/*.list|*.sources``."""
    sources: list[AptSource] = []
    files = [root / "sources.list"]
    d = root / "sources.list.d"
    if d.is_dir():
        files += sorted(d.glob("*.list")) + sorted(d.glob("*.sources"))
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        sources += _parse_deb822(text) if f.suffix == ".sources" else _parse_one_line(text)
    return sources


def debian_sources(sources: list[AptSource], suite: str = SUITE) -> list[AptSource]:
    """The binary sources serving ``suite`` or its companions (``-updates``, ``-security``)."""
    out = []
    for s in sources:
        suites = [x for x in s.suites if x == suite or x.startswith(suite + "-")]
        if "deb" in s.types and suites:
            out.append(AptSource(s.uris, suites, s.components or ["main"], s.signed_by))
    return out


def debian_mirror(sources: list[AptSource], suite: str = SUITE) -> str:
    """The mirror URI for debootstrap: the first source serving ``suite`` itself."""
    for s in debian_sources(sources, suite):
        if suite in s.suites:
            return s.uris[0]
    for s in sources:
        for uri in s.uris:
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return FALLBACK_MIRROR


def render_deb822(sources: list[AptSource], rootfs: Path) -> str:
    """deb822 text for the image; Signed-By kept only when the key file is in the image."""
    paras = []
    for s in sources:
        lines = [
            "Types: deb",
            f"URIs: {' '.join(s.uris)}",
            f"Suites: {' '.join(s.suites)}",
            f"Components: {' '.join(s.components)}",
        ]
        if s.signed_by and (rootfs / s.signed_by.lstrip("/")).is_file():
            lines.append(f"Signed-By: {s.signed_by}")
        paras.append("\n".join(lines))
    return "\n\n".join(paras) + "\n"


# --- base image ------------------------------------------------------------------------------


def _run_logged(cmd: list[str], log: Path, timeout: float, what: str) -> None:
    code = run_logged(cmd, log, timeout)
    if code is None:
        raise ExternalServiceError(
            f"{what} did not finish within {timeout:g}s", obj=what, hint=f"see {log}"
        )
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise ExternalServiceError(
            f"{what} failed (exit {code})",
            obj=what,
            hint=f"see {log}; then: smartpraxx-provision dev-stack up --rebuild-base",
            details={"log": tail},
        )


def base_tarball(settings: Settings) -> Path:
    return settings.cache_dir / "images" / f"debian-{SUITE}-minbase.tar"


def build_base_tarball(settings: Settings, reporter: Reporter) -> Path:
    """debootstrap a minbase root file system and tar it into the cache."""
    ensure_debootstrap(settings, reporter)
    tarball = base_tarball(settings)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    rootfs = tarball.parent / f"rootfs-{SUITE}.tmp"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    sources = read_apt_sources()
    mirror = debian_mirror(sources)
    log = log_dir(settings) / "debootstrap.log"
    log.write_text("")
    reporter.change(f"debootstrap --variant=minbase {SUITE} from {mirror} (log {log})")
    debootstrap = which("debootstrap") or "debootstrap"
    try:
        _run_logged(
            [debootstrap, "--variant=minbase", SUITE, str(rootfs), mirror],
            log,
            DEBOOTSTRAP_TIMEOUT,
            "debootstrap",
        )
        apt = rootfs / "etc" / "apt"
        wanted = debian_sources(sources) or [AptSource([mirror], [SUITE], ["main"])]
        (apt / "sources.list.d").mkdir(parents=True, exist_ok=True)
        (apt / "sources.list.d" / "debian.sources").write_text(render_deb822(wanted, rootfs))
        (apt / "sources.list").unlink(missing_ok=True)
        for cache in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
            for f in cache.glob("*"):
                if f.is_file():
                    f.unlink()
        partial = tarball.with_suffix(".tar.tmp")
        _run_logged(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            log,
            600,
            "tar of the base root file system",
        )
        partial.replace(tarball)
    finally:
        if rootfs.exists():
            shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def ensure_base_image(
    settings: Settings, reporter: Reporter, engine: DockerEngine, rebuild: bool = False
) -> dict[str, Any]:
    start = time.monotonic()
    if not rebuild and engine.image_exists(BASE_TAG):
        reporter.skip(f"image {BASE_TAG} present")
        return {"tag": BASE_TAG, "status": "present", "seconds": _since(start)}
    tarball = base_tarball(settings)
    result: dict[str, Any] = {"tag": BASE_TAG}
    if rebuild or not tarball.is_file():
        build_base_tarball(settings, reporter)
        result["debootstrap_seconds"] = _since(start)
    else:
        reporter.info(f"re-using cached root file system {tarball}")
    t_import = time.monotonic()
    image_id = engine.import_image(tarball, BASE_TAG, changes=BASE_CHANGES)
    result["import_seconds"] = _since(t_import)
    reporter.change(f"imported {BASE_TAG} ({image_id[:19]})")
    result.update(status="imported", seconds=_since(start))
    return result


# --- service images ----------------------------------------------------------------------


def context_hash(context: Path, base_id: str) -> str:
    """SHA-256 over the build context's files (paths, modes, contents) and the base id."""
    h = hashlib.sha256(base_id.encode())
    for f in sorted(p for p in context.rglob("*") if p.is_file()):
        rel = f.relative_to(context)
        if "__pycache__" in rel.parts or f.suffix == ".pyc":
            continue
        h.update(f"\0{rel.as_posix()}\0{f.stat().st_mode & 0o111:o}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def ensure_service_image(
    image: ServiceImage,
    reporter: Reporter,
    engine: DockerEngine,
    base_tag: str,
    rebuild: bool = False,
) -> dict[str, Any]:
    start = time.monotonic()
    result: dict[str, Any] = {"tag": image.tag}
    if not (image.context / "Dockerfile").is_file():
        what = "stand-in image sources missing" if image.optional else "image sources missing"
        reporter.warn(f"{what}: no {image.context / 'Dockerfile'}; {image.tag} not built")
        result.update(status="sources-missing", context=str(image.context))
        return result
    wanted = context_hash(image.context, engine.image_id(base_tag))
    labels = engine.image_labels(image.tag)
    if labels is not None and not rebuild and labels.get(LABEL_CONTEXT_HASH) == wanted:
        reporter.skip(f"image {image.tag} present, up to date")
        result.update(status="present", seconds=_since(start))
        return result
    why = (
        "rebuild requested"
        if rebuild
        else "not present"
        if labels is None
        else "sources or base image changed"
    )
    reporter.change(f"building {image.tag} ({why})")
    engine.build_image(
        image.context,
        image.tag,
        buildargs={"BASE_IMAGE": base_tag},
        labels={LABEL_CONTEXT_HASH: wanted, LABEL_MANAGED: "true"},
        reporter=reporter,
        nocache=rebuild,
    )
    result.update(status="built", seconds=_since(start))
    reporter.change(f"built {image.tag} ({result['seconds']:.1f}s)")
    return result


def ensure_images(
    settings: Settings, reporter: Reporter, engine: DockerEngine | None = None,
    *, rebuild: bool = False, rebuild_base: bool = False,
) -> dict[str, dict[str, Any]]:
    """Base image, then every service image. Returns key → {tag, status, seconds...}."""
    engine = engine or DockerEngine()
    results = {"base": ensure_base_image(settings, reporter, engine, rebuild=rebuild_base)}
    for image in service_images(settings.local_image_tag):  # each after the one it is FROM
        results[image.key] = ensure_service_image(
            image, reporter, engine, from_tag(image.key, settings.local_image_tag),
            rebuild=rebuild or rebuild_base,
        )
    return results


def from_tag(key: str, local_tag: str = "dev") -> str:
    """The image the service image ``key`` is built FROM (its ``BASE_IMAGE`` build arg)."""
    images = {img.key: img for img in service_images(local_tag)}
    base = images[key].base
    return BASE_TAG if base == "base" else images[base].tag


def images_status(engine: DockerEngine, local_tag: str = "dev") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, tag in image_tags(local_tag).items():
        out[key] = {"tag": tag, "present": engine.image_exists(tag)}
    return out


def _since(start: float) -> float:
    return round(time.monotonic() - start, 2)
