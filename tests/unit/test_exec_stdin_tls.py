"""``exec`` with stdin on a TLS engine (a TLS connection cannot be half-closed): the data goes
into a private file in the container, the command reads it through ``sh``, the file is
removed. FAKE SDK objects; the real path runs in tests/e2e/test_fleet_hosts.py
(``occ config:import`` on a TLS fleet host)."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine, ExecResult

TLS = {"ca": "/x/ca.pem", "cert": "/x/cert.pem", "key": "/x/key.pem"}


class _Containers:
    def get(self, name: str) -> str:
        return f"container:{name}"


class _Client:
    containers = _Containers()


def _engine(url: str, tls: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch) -> tuple[
        DockerEngine, list[Any]]:
    engine = DockerEngine(url, tls=tls)
    engine._client = _Client()
    calls: list[Any] = []
    original = engine.exec
    monkeypatch.setattr(engine, "_check_container_once", lambda name: None)
    monkeypatch.setattr(engine, "_image_user", lambda c, user: (33, 34))

    def put_archive(name: str, path: str, data: bytes) -> None:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            (member,) = tar.getmembers()
            body = tar.extractfile(member)
            assert body is not None
            calls.append(("put", name, path, member.name, member.mode, member.uid, member.gid,
                          body.read()))

    def exec_(name: str, cmd: list[str], user: str | None = None, env: Any = None,
              workdir: str | None = None, stdin: bytes | None = None,
              timeout: float = 300.0) -> ExecResult:
        if stdin is not None:
            return original(name, cmd, user=user, env=env, workdir=workdir, stdin=stdin,
                            timeout=timeout)
        calls.append(("exec", name, cmd, user, env, workdir))
        return ExecResult(0, "out", "")

    monkeypatch.setattr(engine, "put_archive", put_archive)
    monkeypatch.setattr(engine, "exec", exec_)
    return engine, calls


def test_stdin_on_a_tls_engine_goes_through_a_private_file(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, calls = _engine("tcp://127.0.0.1:2376", TLS, monkeypatch)
    assert engine.uses_tls
    result = engine.exec("nc01-cloud002-app", ["php", "occ", "config:import"], user="www-data",
                         env={"A": "1"}, workdir="/var/www/html", stdin=b'{"system": {}}')
    put, run, remove = calls
    assert put[:3] == ("put", "nc01-cloud002-app", "/tmp")
    name, mode, uid, gid, data = put[3:]
    assert name.startswith(".smartpraxx-stdin-") and len(name) > len(".smartpraxx-stdin-") + 8
    assert (mode, uid, gid, data) == (0o600, 33, 34, b'{"system": {}}')
    path = f"/tmp/{name}"
    assert run[2][:4] == ["sh", "-c", 'f="$1"; shift; exec "$@" < "$f"', "sh"]
    assert run[2][4:] == [path, "php", "occ", "config:import"]
    assert run[3:] == ("www-data", {"A": "1"}, "/var/www/html")
    assert remove[2] == ["rm", "-f", path] and remove[3] == "www-data"
    assert result.stdout == "out"


def test_the_file_is_removed_when_the_command_fails_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, calls = _engine("tcp://127.0.0.1:2376", TLS, monkeypatch)
    inner = engine.exec

    def failing(name: str, cmd: list[str], **kw: Any) -> ExecResult:
        if cmd[0] == "sh":
            raise RuntimeError("engine went away")
        return inner(name, cmd, **kw)

    monkeypatch.setattr(engine, "exec", failing)
    with pytest.raises(RuntimeError):
        engine._exec_stdin_file("c", ["cat"], "www-data", None, None, b"x", 5.0)
    assert calls[-1][2][:2] == ["rm", "-f"]


def test_plain_engines_do_not_use_the_file() -> None:
    assert not DockerEngine("tcp://127.0.0.1:2375").uses_tls
    assert not DockerEngine().uses_tls
    assert not DockerEngine("ssh://ops@cloud002").uses_tls
