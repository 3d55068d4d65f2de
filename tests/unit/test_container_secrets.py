"""Pure parts of secrets-as-files and container confinement: what each container gets."""

from __future__ import annotations

from pathlib import Path

from smartpraxx_provision.adapters.docker_engine import ContainerSpec, SecretFile
from smartpraxx_provision.config import load_settings
from smartpraxx_provision.render import bundle as b


def test_secret_values_never_in_repr_but_in_the_spec_hash() -> None:
    secret = "s3cret-value-" + "x" * 20
    spec = ContainerSpec(
        name="nc01-cloud001-db",
        image="img",
        secret_files=(SecretFile("/run/secrets/db-password", "mysql", secret),),
    )
    assert secret not in repr(spec) and secret not in repr(spec.secret_files[0])
    rotated = ContainerSpec(
        name="nc01-cloud001-db",
        image="img",
        secret_files=(SecretFile("/run/secrets/db-password", "mysql", secret + "2"),),
    )
    # a rotated secret changes the hash (the container is recreated with the new file) ...
    assert spec.spec_hash("id") != rotated.spec_hash("id")
    # ... and the hash label is not the secret
    assert secret not in spec.spec_hash("id")


def test_each_container_gets_only_what_it_reads() -> None:
    assert "nc_admin" not in b.CONTAINER_SECRETS["cron"]
    assert "db_password" not in b.CONTAINER_SECRETS["cron"]
    assert "nc_admin" not in b.CONTAINER_SECRETS["db"] + b.CONTAINER_SECRETS["redis"]
    assert b.CONTAINER_SECRETS["redis"] == ("redis_password",)
    assert "oidc_client_secret" not in sum(b.CONTAINER_SECRETS.values(), ())
    assert set(b.CONTAINER_SECRETS) == set(b.SECRET_OWNERS) == set(b.CAP_ADD)
    assert b.secret_file("db_password") == "/run/secrets/db-password"
    assert b.secret_file("redis_password") == b.REDIS_SECRET_FILE


def test_hardening_follows_the_settings(tmp_path: Path) -> None:
    s = load_settings(
        env={},
        overrides={"state_dir": str(tmp_path), "slot_cpus": "0.5", "slot_pids_limit": "200"},
    )
    for role in b.CAP_ADD:
        h = b.hardening(role, s)
        assert h["cap_drop"] == ["ALL"] and h["cap_add"] == list(b.CAP_ADD[role])
        assert h["security_opt"] == ["no-new-privileges:true"]
        assert h["pids_limit"] == 200 and h["nano_cpus"] == 500_000_000
    assert b.hardening("db", s)["cap_add"] == [] and b.hardening("redis", s)["cap_add"] == []
