"""The practice's start page at ``mein.smartpraxx.de/<praxisname>``: what it shows (pure).

The page is the staff's front door: the practice's name and one large tile per tool the
practice ordered (PraxisTalk, Aufgaben, Passwörter, Umfragen, Dateien) plus each
third-party app of the Starter Excel's Apps sheet. A tile may be limited to some roles
(``rolle`` claim of the realm's ID token); the page hides tiles the signed-in person's
role does not have. Every link goes to the tool itself, whose own OIDC login finds the
realm session the start page opened, so nobody types a password twice.

Nothing here holds staff data: a view is built from the practice's record (display name,
ordered apps, slot) and the realm's third-party clients, and rendered deterministically by
``render/startpage.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Nextcloud app id -> (tile key, label, description, path in the practice's Nextcloud).
# Order = order on the page.
NEXTCLOUD_TILES: tuple[tuple[str, str, str, str, str], ...] = (
    ("spreed", "talk", "PraxisTalk", "Chat und Videoanrufe im Praxisteam", "/apps/spreed/"),
    ("deck", "aufgaben", "Aufgaben", "Aufgaben und Boards des Teams", "/apps/deck/"),
    ("passwords", "passwoerter", "Passwörter", "Gemeinsame Passwörter der Praxis",
     "/apps/passwords/"),
    ("forms", "umfragen", "Umfragen", "Formulare und Umfragen", "/apps/forms/"),
)
FILES_TILE = ("dateien", "Dateien", "Dokumente und Ordner der Praxis", "/apps/files/")


@dataclass(frozen=True)
class Tile:
    key: str  # stable, [a-z0-9-]; the element id on the page
    label: str
    description: str
    href: str
    roles: tuple[str, ...] = ()  # role slugs that see the tile; empty = everyone
    external: bool = False  # a third-party tool (not the practice's Nextcloud)


@dataclass(frozen=True)
class ExternalApp:
    """A third-party app as the realm knows it (its OIDC client)."""

    key: str  # the client id, e.g. app-dienstplanung
    name: str
    url: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartPageView:
    praxisname: str
    display_name: str
    page_url: str  # the page's own address (the OIDC redirect URI), ends with "/"
    issuer: str  # the realm's issuer as browsers reach it
    client_id: str  # the page's own public OIDC client
    tiles: tuple[Tile, ...]
    suspended: bool = False  # subscription paused: a notice instead of the login and tiles


SUSPENDED_NOTICE = (
    "Der Zugang Ihrer Praxis ist derzeit gesperrt. Ihre Daten bleiben vollständig erhalten. "
    "Bitte wenden Sie sich an die Praxisleitung oder an den smartpraxx-Support."
)


def start_page_tiles(
    ordered_apps: Iterable[str], nextcloud_url: str, external: Sequence[ExternalApp]
) -> tuple[Tile, ...]:
    """The tiles in page order: ordered Nextcloud apps, Dateien, then third-party apps
    sorted by name (a deterministic order whatever order the realm lists its clients in)."""
    base = nextcloud_url.rstrip("/")
    wanted = set(ordered_apps)
    tiles = [
        Tile(key, label, description, base + path)
        for app, key, label, description, path in NEXTCLOUD_TILES
        if app in wanted
    ]
    key, label, description, path = FILES_TILE
    tiles.append(Tile(key, label, description, base + path))
    for app in sorted(external, key=lambda a: (a.name.casefold(), a.key)):
        tiles.append(Tile(app.key, app.name, "Anmeldung mit Ihrem Praxis-Konto", app.url,
                          roles=tuple(sorted(app.roles)), external=True))
    return tuple(tiles)
