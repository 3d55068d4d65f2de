"""The SecretStore interface shared by every backend.

Paths are slash-separated, e.g. ``platform/keycloak-admin`` or
``practices/nc07-cloud023/db-password``. The first two segments of a practice path
(``practices/<slot id>``) name the unit that ``delete(prefix)`` removes on decommission.
Values are strings; they are never logged, never put into argv, the inventory or the journal.
"""

from __future__ import annotations

import re
import secrets as _stdlib_secrets
from abc import ABC, abstractmethod
from collections.abc import Callable

from ..errors import SecretStoreError

_PATH_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+$")


def check_path(path: str) -> str:
    if not _PATH_RE.match(path):
        raise SecretStoreError(
            f"invalid secret path {path!r}",
            obj=path,
            hint="use lower-case segments separated by '/', at least two segments",
        )
    return path


def generate_token(nbytes: int = 32) -> str:
    """The default generator: URL-safe random text (``secrets.token_urlsafe``) that starts
    with a letter or digit.

    A secret starting with ``-`` breaks every tool that gets it as a separate argument value:
    the official Nextcloud image runs ``occ maintenance:install --admin-pass <value>``, and
    Symfony Console then reads ``-x...`` as an unknown option (seen here: 1 install in ~30
    failed this way). Re-drawing keeps the full entropy of the remaining characters.
    """
    for _ in range(1000):  # P(64 leading '-'/'_' in a row) is nil; the bound is for form
        value = _stdlib_secrets.token_urlsafe(nbytes)
        if value[0].isalnum():
            return value
    raise SecretStoreError("could not draw a secret that starts with a letter or digit")


def practice_prefix(slot_id: str) -> str:
    return f"practices/{slot_id}"


class SecretStore(ABC):
    """get/put/ensure/delete over slash-separated paths."""

    backend: str = "abstract"

    @abstractmethod
    def get(self, path: str) -> str | None:
        """The stored value, or None when there is none."""

    @abstractmethod
    def put(self, path: str, value: str) -> None:
        """Store ``value`` at ``path`` (overwrite)."""

    @abstractmethod
    def delete(self, prefix: str) -> int:
        """Remove every secret at or below ``prefix``; return how many were removed."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Paths at or below ``prefix`` (names only, never values)."""

    def ensure(self, path: str, generator: Callable[[], str] = generate_token) -> str:
        """Return the stored secret, generating and storing it once when missing."""
        existing = self.get(path)
        if existing is not None:
            return existing
        value = generator()
        self.put(path, value)
        return value

    def require(self, path: str) -> str:
        value = self.get(path)
        if value is None:
            raise SecretStoreError(
                f"secret {path} is missing from the {self.backend} store",
                obj=path,
                hint="re-run the operation that creates it (e.g. 'smartpraxx-provision provision ...')",
            )
        return value
