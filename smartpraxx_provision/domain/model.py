"""Pure domain types shared by every layer.

No I/O here. ``PracticeSpec`` is what the Starter Excel reader produces and what identity,
render and operations consume. Persons carry staff personal data: it goes only into the
practice's own realm (do-not-track), never into the inventory, the journal or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class PracticeType(StrEnum):
    ARZTPRAXIS = "arztpraxis"
    ZAHNARZTPRAXIS = "zahnarztpraxis"
    MVZ = "mvz"
    PSYCHOTHERAPIEPRAXIS = "psychotherapiepraxis"

    @property
    def label(self) -> str:
        return _PRACTICE_TYPE_LABELS[self]

    @property
    def is_dental(self) -> bool:
        return self is PracticeType.ZAHNARZTPRAXIS


_PRACTICE_TYPE_LABELS = {
    PracticeType.ARZTPRAXIS: "Arztpraxis",
    PracticeType.ZAHNARZTPRAXIS: "Zahnarztpraxis",
    PracticeType.MVZ: "MVZ",
    PracticeType.PSYCHOTHERAPIEPRAXIS: "Psychotherapiepraxis",
}


class Role(StrEnum):
    """A person's one role. The value is the slug stored in the realm attribute ``rolle``."""

    PRAXISINHABER = "praxisinhaber"
    ARZT = "arzt"
    ZAHNARZT = "zahnarzt"
    WEITERBILDUNGSASSISTENT = "weiterbildungsassistent"
    PSYCHOTHERAPEUT = "psychotherapeut"
    MFA = "mfa"
    ZFA = "zfa"
    ZMF = "zmf"
    ZMP = "zmp"
    ZMV = "zmv"
    DH = "dh"
    PRAXISMANAGER = "praxismanager"
    AZUBI = "azubi"
    SONSTIGE = "sonstige"

    @property
    def label(self) -> str:
        """The Starter Excel label (German, gender colon)."""
        return ROLE_LABELS[self]

    @property
    def is_doctor(self) -> bool:
        """Roles of licensed practitioners (may hold a LANR)."""
        return self in DOCTOR_ROLES

    @property
    def is_billable(self) -> bool:
        return self in BILLABLE_ROLES


ROLE_LABELS: dict[Role, str] = {
    Role.PRAXISINHABER: "Praxisinhaber:in",
    Role.ARZT: "Ärzt:in",
    Role.ZAHNARZT: "Zahnärzt:in",
    Role.WEITERBILDUNGSASSISTENT: "Weiterbildungsassistent:in",
    Role.PSYCHOTHERAPEUT: "Psychotherapeut:in",
    Role.MFA: "MFA",
    Role.ZFA: "ZFA",
    Role.ZMF: "ZMF",
    Role.ZMP: "ZMP",
    Role.ZMV: "ZMV",
    Role.DH: "DH",
    Role.PRAXISMANAGER: "Praxismanager:in",
    Role.AZUBI: "Auszubildende:r",
    Role.SONSTIGE: "Sonstige",
}

DOCTOR_ROLES = frozenset(
    {Role.PRAXISINHABER, Role.ARZT, Role.ZAHNARZT, Role.WEITERBILDUNGSASSISTENT, Role.PSYCHOTHERAPEUT}
)
# Sold per doctor: owners, employed doctors/dentists and psychotherapists. Trainees are free.
BILLABLE_ROLES = frozenset({Role.PRAXISINHABER, Role.ARZT, Role.ZAHNARZT, Role.PSYCHOTHERAPEUT})


class WorkArea(StrEnum):
    """Work areas (multi-valued attribute ``arbeitsbereiche``); value = slug."""

    EMPFANG = "empfang"
    ABRECHNUNG = "abrechnung"
    LABOR = "labor"
    QM = "qm"
    HYGIENE = "hygiene"
    VERWALTUNG = "verwaltung"
    PROPHYLAXE = "prophylaxe"
    ASSISTENZ = "assistenz"
    ROENTGEN = "roentgen"
    DATENSCHUTZ_IT = "datenschutz-it"
    AUSBILDUNG = "ausbildung"

    @property
    def label(self) -> str:
        return WORK_AREA_LABELS[self]


WORK_AREA_LABELS: dict[WorkArea, str] = {
    WorkArea.EMPFANG: "Empfang",
    WorkArea.ABRECHNUNG: "Abrechnung",
    WorkArea.LABOR: "Labor",
    WorkArea.QM: "QM",
    WorkArea.HYGIENE: "Hygiene",
    WorkArea.VERWALTUNG: "Verwaltung",
    WorkArea.PROPHYLAXE: "Prophylaxe",
    WorkArea.ASSISTENZ: "Assistenz",
    WorkArea.ROENTGEN: "Röntgen",
    WorkArea.DATENSCHUTZ_IT: "Datenschutz/IT",
    WorkArea.AUSBILDUNG: "Ausbildung",
}


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


_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ThirdPartyApp:
    """A third-party SSO application (e.g. a duty roster) shown on the start page."""

    name: str
    url: str
    redirect_uri: str
    roles: tuple[str, ...] = ()  # role slugs whose start page shows the tile; () = everyone

    @property
    def slug(self) -> str:
        from .names import transliterate

        return _SLUG_RE.sub("-", transliterate(self.name).lower()).strip("-") or "app"

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
        return f"nc{self.number:02d}"

    @property
    def id(self) -> str:
        return f"{self.nc}-{self.host}"

    def fqdn(self, domain: str) -> str:
        return f"{self.nc}.{self.host}.{domain}"

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
