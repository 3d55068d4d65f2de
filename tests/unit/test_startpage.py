"""The practice's start page: tiles (pure), the HTML render (golden), its safety."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from smartpraxx_provision.domain.startpage import ExternalApp, StartPageView, start_page_tiles
from smartpraxx_provision.render.startpage import render_start_page, start_page_assets
from tests.fixtures.ci_policy import golden_update_requested

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "startseite" / "index.html"

NC = "https://nc07.cloud023.smartpraxx.de"
ROSTER = ExternalApp("app-dienstplanung", "Dienstplanung", "https://dienstplan.example.de/",
                     roles=("mfa", "praxisinhaber"))
LAB = ExternalApp("app-labor", "Labor <Befunde>", "https://labor.example.de/")


def _view(apps: tuple[str, ...] = ("spreed", "deck", "passwords", "forms"),
          external: tuple[ExternalApp, ...] = (ROSTER, LAB)) -> StartPageView:
    return StartPageView(
        praxisname="praxis-mueller",
        display_name="Hausarztpraxis Dr. Müller & Kollegen",
        page_url="https://mein.smartpraxx.de/praxis-mueller/",
        issuer="https://mein.smartpraxx.de/realms/nc07-cloud023",
        client_id="startseite",
        tiles=start_page_tiles(apps, NC, external),
    )


def test_tiles_follow_the_order_and_the_ordered_apps() -> None:
    tiles = start_page_tiles(("forms", "spreed"), NC + "/", [ROSTER, LAB])
    assert [t.label for t in tiles] == [
        "PraxisTalk", "Umfragen", "Dateien", "Dienstplanung", "Labor <Befunde>"]
    assert tiles[0].href == f"{NC}/apps/spreed/"
    assert tiles[3].roles == ("mfa", "praxisinhaber") and tiles[3].external
    assert tiles[4].roles == () and tiles[4].href == "https://labor.example.de/"
    # the realm may list its clients in any order: the page does not change
    assert start_page_tiles(("forms", "spreed"), NC, [LAB, ROSTER]) == tiles


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self.roles: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.lang: str | None = None
        self._config = False
        self.config = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "a" and (a.get("id") or "").startswith("kachel-"):
            self.links[str(a["id"])] = str(a["href"])
        if tag == "li" and "data-rollen" in a:
            self.roles.append(str(a["data-rollen"]))
        if tag == "script":
            self.scripts.append(a)
            self._config = a.get("id") == "startseite-config"

    def handle_data(self, data: str) -> None:
        if self._config:
            self.config += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._config = False


def test_page_is_german_lists_the_tiles_and_carries_its_oidc_config() -> None:
    html = render_start_page(_view())
    page = _Page()
    page.feed(html)
    assert page.lang == "de"
    assert "<h1>Hausarztpraxis Dr. Müller &amp; Kollegen</h1>" in html
    assert page.links["kachel-aufgaben"] == f"{NC}/apps/deck/"
    assert page.links["kachel-app-dienstplanung"] == "https://dienstplan.example.de/"
    assert "mfa praxisinhaber" in page.roles
    assert "Labor &lt;Befunde&gt;" in html and "<Befunde>" not in html
    config = json.loads(page.config)
    assert config == {
        "client_id": "startseite", "issuer": "https://mein.smartpraxx.de/realms/nc07-cloud023",
        "page_url": "https://mein.smartpraxx.de/praxis-mueller/", "praxisname": "praxis-mueller",
        "suspended": False}
    # no inline script: only the JSON data block and the shared static file (CSP script-src 'self')
    assert [s.get("src") for s in page.scripts] == [None, "/_startseite/startseite.js"]
    assert page.scripts[0].get("type") == "application/json"


def test_a_hostile_display_name_cannot_close_the_config_block() -> None:
    view = _view()
    hostile = StartPageView(view.praxisname, "</script><script>alert(1)</script>",
                            view.page_url, "https://x.de/realms/</script>", view.client_id,
                            view.tiles)
    html = render_start_page(hostile)
    assert "<script>alert(1)" not in html
    assert html.count("</script>") == 2  # the data block's and the static script's own


def test_render_is_deterministic_and_matches_the_golden_file() -> None:
    html = render_start_page(_view())
    assert html == render_start_page(_view())
    if golden_update_requested():
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(html, encoding="utf-8")
    assert html == GOLDEN.read_text(encoding="utf-8")


def test_assets_are_the_shared_script_and_stylesheet() -> None:
    assets = start_page_assets()
    assert sorted(assets) == ["startseite.css", "startseite.js"]
    script = assets["startseite.js"].decode()
    # the code flow with PKCE S256, and no token ever leaves sessionStorage for another origin
    assert 'code_challenge_method: "S256"' in script
    assert "localStorage" not in script
    css = assets["startseite.css"].decode()
    assert "px" not in re.sub(r"1px", "", css)  # rem units only: readable at 200 % zoom


def test_a_suspended_practice_page_shows_the_notice_and_no_tiles() -> None:
    import dataclasses

    html = render_start_page(dataclasses.replace(_view(), suspended=True))
    assert "derzeit gesperrt" in html and "Ihre Daten bleiben vollständig erhalten" in html
    assert 'id="kacheln"' not in html and "kachel-" not in html and 'id="abmelden"' not in html
    page = _Page()
    page.feed(html)
    assert json.loads(page.config)["suspended"] is True
    assert "if (cfg.suspended) { return; }" in start_page_assets()["startseite.js"].decode()
