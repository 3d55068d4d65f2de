"""Pure domain types shared by every layer.

No I/O here. ``PracticeSpec`` is what the Starter Excel reader produces and what identity,
render and operations consume. Persons carry staff personal data: it goes only into the
practice's own realm (do-not-track), never into the inventory, the journal or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

from .names import slugify


class LabelledEnum(StrEnum):
    """A StrEnum whose members also carry their display label: ``MEMBER = "slug", "Label"``.

    The value is the slug (what is stored and compared); ``label`` is the German text of the
    Starter Excel and the reports.
    """

    label: str

    def __new__(cls, value: str, label: str, *more: object) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class PracticeType(LabelledEnum):
    ARZTPRAXIS = "arztpraxis", "Arztpraxis"
    ZAHNARZTPRAXIS = "zahnarztpraxis", "Zahnarztpraxis"
    MVZ = "mvz", "MVZ"
    PSYCHOTHERAPIEPRAXIS = "psychotherapiepraxis", "Psychotherapiepraxis"

    @property
    def is_dental(self) -> bool:
        return self is PracticeType.ZAHNARZTPRAXIS


class Role(LabelledEnum):
    """A person's one role. The value is the slug stored in the realm attribute ``rolle``.

    ``is_doctor``: a licensed practitioner (may hold a LANR). ``is_billable``: sold per doctor —
    owners, employed doctors/dentists and psychotherapists; trainees are free.
    """

    is_doctor: bool
    is_billable: bool

    def __init__(self, value: str, label: str, doctor: bool = False, billable: bool = False) -> None:
        self.is_doctor = doctor
        self.is_billable = billable

    # slug, Starter Excel label (German, gender colon), is_doctor, is_billable
    PRAXISINHABER = "praxisinhaber", "Praxisinhaber:in", True, True
    ARZT = "arzt", "Ärzt:in", True, True
    ZAHNARZT = "zahnarzt", "Zahnärzt:in", True, True
    WEITERBILDUNGSASSISTENT = "weiterbildungsassistent", "Weiterbildungsassistent:in", True, False
    PSYCHOTHERAPEUT = "psychotherapeut", "Psychotherapeut:in", True, True
    MFA = "mfa", "MFA", False, False
    ZFA = "zfa", "ZFA", False, False
    ZMF = "zmf", "ZMF", False, False
    ZMP = "zmp", "ZMP", False, False
    ZMV = "zmv", "ZMV", False, False
    DH = "dh", "DH", False, False
    PRAXISMANAGER = "praxismanager", "Praxismanager:in", False, False
    AZUBI = "azubi", "Auszubildende:r", False, False
    SONSTIGE = "sonstige", "Sonstige", False, False


class WorkArea(LabelledEnum):
    """Work areas (multi-valued attribute ``arbeitsbereiche``); value = slug."""

    EMPFANG = "empfang", "Empfang"
    ABRECHNUNG = "abrechnung", "Abrechnung"
    LABOR = "labor", "Labor"
    QM = "qm", "QM"
    HYGIENE = "hygiene", "Hygiene"
    VERWALTUNG = "verwaltung", "Verwaltung"
    PROPHYLAXE = "prophylaxe", "Prophylaxe"
    ASSISTENZ = "assistenz", "Assistenz"
    ROENTGEN = "roentgen", "Röntgen"
    DATENSCHUTZ_IT = "datenschutz-it", "Datenschutz/IT"
    AUSBILDUNG = "ausbildung", "Ausbildung"


class Package(StrEnum):
    BASIS = "basis"
    PREMIUM = "premium"


@dataclass(frozen=True)
class Person:
    """One staff member. Personal data: only ever written into the practice's realm."""

    first_name: str
    last_name: str
    email: str
    username: str
    role: Role
    work_areas: tuple[WorkArea, ...] = ()
    lanr: str | None = None
    specialty: str | None = None  # slug from the specialty catalogue
    admin: bool = False
    # every LANR of the person (one per Fachgruppe, digits 1–7 equal); lanr == lanrs[0]
    lanrs: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class AppChoice:
    """Nextcloud apps ordered in the Starter Excel's Apps sheet."""

    talk: bool = True  # spreed
    deck: bool = True
    passwords: bool = True
    forms: bool = True

    def app_ids(self) -> tuple[str, ...]:
        chosen = (
            ("spreed", self.talk),
            ("deck", self.deck),
            ("passwords", self.passwords),
            ("forms", self.forms),
        )
        return tuple(app for app, on in chosen if on)


@dataclass(frozen=True)
class ThirdPartyApp:
    """A third-party SSO application (e.g. a duty roster) shown on the start page."""

    name: str
    url: str
    redirect_uri: str
    roles: tuple[str, ...] = ()  # role slugs whose start page shows the tile; () = everyone

    @property
    def slug(self) -> str:
        return slugify(self.name) or "app"

    @property
    def client_id(self) -> str:
        return f"app-{self.slug}"


@dataclass(frozen=True)
class PracticeSpec:
    """Everything the Starter Excel says about one practice, validated."""

    praxisname: str
    display_name: str
    practice_type: PracticeType
    kv: str  # canonical short form, e.g. "KV Rheinland-Pfalz" / "KZV Bayern"
    specialties: tuple[str, ...]  # slugs
    order_id: str
    contact_email: str
    bsnr: str | None = None
    package: Package = Package.BASIS
    persons: tuple[Person, ...] = ()
    apps: AppChoice = field(default_factory=AppChoice)
    third_party_apps: tuple[ThirdPartyApp, ...] = ()
    form_version: int = 1


SLOT_RE = re.compile(r"^nc(?P<number>\d{2,})-cloud(?P<host>\d{3,})$")
HOST_RE = re.compile(r"^cloud(?P<number>\d{3,})$")


@dataclass(frozen=True, order=True)
class Slot:
    """An immutable slot ``ncXX.cloudYYY``: slot number ``number`` on host ``host``.

    ``id`` (``nc07-cloud023``) is the technical name used for containers, networks,
    volumes, the realm and secret paths; ``fqdn(domain)`` is the public host name.
    """

    host: str  # "cloud023"
    number: int  # 7

    def __post_init__(self) -> None:
        if not HOST_RE.match(self.host):
            raise ValueError(f"invalid host name {self.host!r} (expected cloudNNN)")
        if self.number < 1:
            raise ValueError(f"invalid slot number {self.number}")

    @property
    def nc(self) -> str:
        """The slot's own part of every name: ``nc07`` (two digits at least)."""
        return f"nc{self.number:02d}"

    def fqdn(self, domain: str) -> str:
        """The public host name: ``nc07.cloud023.<domain>``."""
        return f"{self.nc}.{self.host}.{domain}"

    @property
    def id(self) -> str:
        """``nc07-cloud023``: unique across the fleet, used where a dot is not allowed."""
        return f"{self.nc}-{self.host}"

    @classmethod
    def parse(cls, text: str) -> Slot:
        """Parse ``nc07-cloud023`` or ``nc07.cloud023[.domain]``."""
        candidate = text.strip().lower()
        parts = candidate.split(".")
        if len(parts) >= 2 and parts[0].startswith("nc") and parts[1].startswith("cloud"):
            candidate = f"{parts[0]}-{parts[1]}"
        m = SLOT_RE.match(candidate)
        if not m:
            raise ValueError(f"invalid slot {text!r} (expected ncXX-cloudYYY)")
        return cls(host=f"cloud{m.group('host')}", number=int(m.group("number")))

    @property
    def realm(self) -> str:
        """The realm's technical name: fixed at creation, derived from the slot."""
        return self.id


# A host's fixed slot ports (``hosts add|set --slot-port-base``) lie in this range.
MIN_SLOT_PORT, MAX_PORT = 1024, 65535


def app_host_port(slot_number: int, base: int | None) -> int:
    """The host port slot ``ncXX``'s Nextcloud app publishes on: ``base + XX - 1`` with a
    slot port base, else 0 (a random free port, chosen anew by each engine start)."""
    if base is None:
        return 0
    port = base + slot_number - 1
    if port > MAX_PORT:
        raise ValueError(f"slot nc{slot_number:02d}: port {port} (slot port base {base}) "
                         f"is above {MAX_PORT}")
    return port
