"""The embedded secret store: one encrypted file per unit under ``<state_dir>/secrets``.

A *unit* is the first two path segments (``practices/nc07-cloud023``, ``platform/keycloak``
...): one practice's secrets live in one file, so decommission removes one file. Each file is
a JSON mapping encrypted with AES-256-GCM (authenticated); the unit name is the associated
data, so a file renamed to another unit fails to decrypt. The key file ``secrets/key`` is
created 0600 on first use. Writes are atomic (temp file, fsync, rename, fsync of the folder)
and serialised across processes with an ``flock`` on ``secrets/.lock``.

Back up ``secrets/`` together with the key file; without the key nothing can be read.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets as _stdlib_secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import SecretStoreError
from .base import SecretStore, check_path, generate_token

_MAGIC = b"SPXS1"
_NONCE = 12
_SEP = "+"  # joins the two segments of a unit in its file name


def _unit_of(path: str) -> tuple[str, str]:
    parts = path.split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (temp + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_stdlib_secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileSecretStore(SecretStore):
    backend = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key: bytes | None = None

    # --- key and locking ---------------------------------------------------------------
    @property
    def key_path(self) -> Path:
        return self.directory / "key"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load_key(self) -> bytes:
        if self._key is not None:
            return self._key
        with self._locked():
            if not self.key_path.exists():
                if any(self.directory.glob("*.enc")):
                    raise SecretStoreError(
                        f"key file {self.key_path} is missing but encrypted secrets exist",
                        obj=str(self.key_path),
                        hint="restore the key file from the backup of the state dir",
                    )
                atomic_write(self.key_path, base64.b64encode(AESGCM.generate_key(256)) + b"\n")
            mode = self.key_path.stat().st_mode & 0o777
            if mode & 0o077:
                raise SecretStoreError(
                    f"key file {self.key_path} is readable by others (mode {mode:o})",
                    obj=str(self.key_path),
                    hint=f"chmod 600 {self.key_path}",
                )
            try:
                key = base64.b64decode(self.key_path.read_bytes().strip(), validate=True)
            except ValueError as exc:
                raise SecretStoreError(
                    f"key file {self.key_path} is corrupt",
                    obj=str(self.key_path),
                    hint="restore the key file from the backup",
                ) from exc
        if len(key) != 32:
            raise SecretStoreError(
                f"key file {self.key_path} is corrupt (wrong length)",
                obj=str(self.key_path),
                hint="restore the key file from the backup",
            )
        self._key = key
        return key

    # --- unit files --------------------------------------------------------------------
    def _file(self, unit: str) -> Path:
        # "+" is outside the path alphabet ([a-z0-9._-]), so file name <-> unit is one-to-one
        # (a "__" separator made "a/b__c" and "a__b/c" share one file)
        return self.directory / (unit.replace("/", _SEP) + ".enc")

    def _read_unit(self, unit: str) -> dict[str, str]:
        path = self._file(unit)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return {}
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE + 16:
            raise SecretStoreError(
                f"secret file {path} is not a smartpraxx secret file",
                obj=str(path),
                hint="restore it from the backup of the state dir",
            )
        nonce = blob[len(_MAGIC) : len(_MAGIC) + _NONCE]
        try:
            plain = AESGCM(self._load_key()).decrypt(
                nonce, blob[len(_MAGIC) + _NONCE :], unit.encode()
            )
        except InvalidTag as exc:
            raise SecretStoreError(
                f"secret file {path} cannot be decrypted (wrong key or tampered)",
                obj=str(path),
                hint="restore the matching key file and secrets from the same backup",
            ) from exc
        data = json.loads(plain)
        if not isinstance(data, dict):
            raise SecretStoreError(f"secret file {path} is malformed", obj=str(path))
        return {str(k): str(v) for k, v in data.items()}

    def _write_unit(self, unit: str, data: dict[str, str]) -> None:
        path = self._file(unit)
        if not data:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        nonce = os.urandom(_NONCE)
        plain = json.dumps(data, sort_keys=True).encode()
        blob = _MAGIC + nonce + AESGCM(self._load_key()).encrypt(nonce, plain, unit.encode())
        atomic_write(path, blob)

    # --- SecretStore -------------------------------------------------------------------
    def get(self, path: str) -> str | None:
        unit, rest = _unit_of(check_path(path))
        return self._read_unit(unit).get(rest)

    def put(self, path: str, value: str) -> None:
        unit, rest = _unit_of(check_path(path))
        self._load_key()
        with self._locked():
            data = self._read_unit(unit)
            data[rest] = value
            self._write_unit(unit, data)

    def ensure(self, path: str, generator: Callable[[], str] = generate_token) -> str:
        unit, rest = _unit_of(check_path(path))
        self._load_key()
        with self._locked():  # generate-once must hold across processes
            data = self._read_unit(unit)
            if rest in data:
                return data[rest]
            value = generator()
            data[rest] = value
            self._write_unit(unit, data)
            return value

    def delete(self, prefix: str) -> int:
        prefix = prefix.strip("/")
        removed = 0
        self._load_key()
        with self._locked():
            for unit in self._units():
                if unit == prefix or unit.startswith(prefix + "/"):
                    removed += len(self._read_unit(unit))
                    self._write_unit(unit, {})
                elif prefix.startswith(unit + "/"):
                    data = self._read_unit(unit)
                    rest_prefix = prefix[len(unit) + 1 :]
                    keep = {
                        k: v
                        for k, v in data.items()
                        if not (k == rest_prefix or k.startswith(rest_prefix + "/"))
                    }
                    removed += len(data) - len(keep)
                    self._write_unit(unit, keep)
        return removed

    def _units(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name[: -len(".enc")].replace(_SEP, "/") for p in self.directory.glob("*.enc")
        )

    def list(self, prefix: str) -> list[str]:
        prefix = prefix.strip("/")
        out: list[str] = []
        for unit in self._units():
            for rest in self._read_unit(unit):
                full = f"{unit}/{rest}" if rest else unit
                if not prefix or full == prefix or full.startswith(prefix + "/"):
                    out.append(full)
        return sorted(out)
