"""The practices' start pages: pure, deterministic HTML renders (autoescaped Jinja2).

``render_start_page(view)`` is one practice's ``index.html``; ``start_page_assets()`` are
the files every page shares (``startseite.js``, ``startseite.css``), served under
``ASSETS_PATH`` on the identity host. The page carries its configuration (issuer, client
id, its own URL) as a JSON data block, so the script is one static file for all practices
and a strict Content-Security-Policy (``script-src 'self'``) holds.
"""

from __future__ import annotations

import json

from markupsafe import Markup

from ..domain.startpage import SUSPENDED_NOTICE, StartPageView
from .templates import read_template, render

TEMPLATE_DIR = "startpage"
ASSETS_PATH = "/_startseite"  # not a praxisname: those never contain "_"
ASSET_NAMES = ("startseite.css", "startseite.js")


def _template_text(name: str) -> str | None:
    return read_template(f"{TEMPLATE_DIR}/{name}")


def _config_json(view: StartPageView) -> str:
    config = {
        "praxisname": view.praxisname,
        "issuer": view.issuer,
        "client_id": view.client_id,
        "page_url": view.page_url,
        "suspended": view.suspended,
    }
    # "<" escaped so that no value can close the surrounding <script> element.
    return json.dumps(config, sort_keys=True, ensure_ascii=False).replace("<", "\\u003c")


def render_start_page(view: StartPageView) -> str:
    """One practice's ``index.html``."""
    return render(
        f"{TEMPLATE_DIR}/index.html.j2", html=True,
        view=view, assets=ASSETS_PATH, config_json=Markup(_config_json(view)),  # noqa: S704
        notice=SUSPENDED_NOTICE,
    )


def start_page_assets() -> dict[str, bytes]:
    """The shared files of all start pages, by file name."""
    out: dict[str, bytes] = {}
    for name in ASSET_NAMES:
        text = _template_text(name)
        if text is None:
            raise FileNotFoundError(f"start page asset {name} is missing from the package")
        out[name] = text.encode("utf-8")
    return out
