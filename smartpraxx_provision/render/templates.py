"""The one place templates are read and rendered (pure, deterministic Jinja2).

Templates live in the package's ``_templates`` folder (``templates/`` in the repository) and
are named by their path below it, e.g. ``proxy/host_routes.caddy.j2``. ``html=True`` renders
with autoescaping (start page, support pages); text formats (Caddyfile, YAML, env, JSON, mail
text) are rendered without it: their values are validated or quoted with filters instead.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import cache
from typing import Any

import jinja2

TEMPLATE_PACKAGE = "smartpraxx_provision._templates"


def template_bytes(path: str) -> bytes | None:
    """The file ``path`` (``/``-separated) below the templates folder, or None."""
    resource = importlib.resources.files(TEMPLATE_PACKAGE)
    for part in path.split("/"):
        resource = resource.joinpath(part)
    return resource.read_bytes() if resource.is_file() else None


def read_template(path: str) -> str | None:
    data = template_bytes(path)
    return None if data is None else data.decode("utf-8")


def _compose_json(value: Any) -> str:
    """JSON (valid YAML) with ``$`` doubled: Compose must not interpolate it."""
    return json.dumps(value, ensure_ascii=False).replace("$", "$$")


@cache
def environment(html: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(read_template),
        undefined=jinja2.StrictUndefined,
        autoescape=html,  # noqa: S701 - False only for text formats (see the module doc)
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["compose_json"] = _compose_json
    return env


def render(path: str, *, html: bool = False, **context: Any) -> str:
    return environment(html).get_template(path).render(**context)
