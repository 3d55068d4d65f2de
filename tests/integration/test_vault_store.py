"""VaultSecretStore against a real OpenBao server (Vault's API; tests/fixtures/openbao.py).

hvac, the real client library, talks to ``bao server -dev`` on 127.0.0.1: KV v2 check-and-set,
generate-once with threads and processes racing, delete of all versions, AppRole login, token
renewal with short TTLs, and the least-privilege policy of ``deploy/vault/smartpraxx-policy.hcl``
(the file the README shows) applied to a real AppRole token.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import SecretStoreError
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.provision import ensure_slot_secrets
from smartpraxx_provision.secrets import open_secret_store, practice_prefix
from smartpraxx_provision.secrets.vault import VaultSecretStore
from smartpraxx_provision.starter import load_practice_spec
from tests.fixtures.openbao import OpenBaoServer
from tests.integration.vault_race_worker import RACE_PATH, race_ensure

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO_ROOT / "deploy" / "vault" / "smartpraxx-policy.hcl"
MOUNT = "secret"  # the documented defaults: the policy file is written for them
PREFIX = "smartpraxx"
POLICY = "smartpraxx"


@pytest.fixture(scope="module")
def bao(openbao: OpenBaoServer) -> OpenBaoServer:
    """The server with KV v2 on secret/, AppRole enabled and the policy file applied."""
    root = openbao.root_client()
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    if f"{MOUNT}/" not in mounts:
        root.sys.enable_secrets_engine("kv", path=MOUNT, options={"version": "2"})
    assert mounts.get(f"{MOUNT}/", {}).get("options", {}).get("version", "2") == "2"
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(name=POLICY, policy=POLICY_FILE.read_text())
    return openbao


@pytest.fixture
def root(bao: OpenBaoServer) -> Iterator[hvac.Client]:
    """A root client; every secret below the prefix (and other/) is removed afterwards."""
    client = bao.root_client()
    yield client
    for top in (PREFIX, "other", f"{PREFIX}-evil"):
        _purge(client, top)


def _purge(client: hvac.Client, folder: str) -> None:
    try:
        keys = client.secrets.kv.v2.list_secrets(path=folder, mount_point=MOUNT)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return
    for key in keys:
        if key.endswith("/"):
            _purge(client, f"{folder}/{key.rstrip('/')}")
        else:
            client.secrets.kv.v2.delete_metadata_and_all_versions(
                path=f"{folder}/{key}", mount_point=MOUNT
            )


def token_settings(bao: OpenBaoServer, tmp_path: Path, token: str, **over: str) -> Settings:
    return load_settings(
        env={"SMARTPRAXX_VAULT_TOKEN": token},
        overrides={
            "state_dir": str(tmp_path),
            "secrets_backend": "vault",
            "vault_url": bao.url,
            **over,
        },
    )


def approle_settings(bao: OpenBaoServer, tmp_path: Path, role_id: str, secret_id: str) -> Settings:
    return load_settings(
        env={"SMARTPRAXX_VAULT_SECRET_ID": secret_id},
        overrides={
            "state_dir": str(tmp_path),
            "secrets_backend": "vault",
            "vault_url": bao.url,
            "vault_auth": "approle",
            "vault_role_id": role_id,
        },
    )


def make_role(root: hvac.Client, name: str, **token: Any) -> tuple[str, str]:
    """An AppRole with only the documented policy (no default policy); its role/secret id."""
    root.auth.approle.create_or_update_approle(
        role_name=name,
        token_policies=[POLICY],
        token_no_default_policy=True,
        secret_id_num_uses=0,
        **token,
    )
    role_id = root.auth.approle.read_role_id(role_name=name)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role_name=name)["data"]["secret_id"]
    return str(role_id), str(secret_id)


def versions(root: hvac.Client, path: str) -> int:
    meta = root.secrets.kv.v2.read_secret_metadata(path=f"{PREFIX}/{path}", mount_point=MOUNT)
    return int(meta["data"]["current_version"])


def open_vault(settings: Settings) -> VaultSecretStore:
    store = open_secret_store(settings)
    assert isinstance(store, VaultSecretStore)
    return store


@pytest.fixture
def store(bao: OpenBaoServer, root: hvac.Client, tmp_path: Path) -> VaultSecretStore:
    return open_vault(token_settings(bao, tmp_path, bao.root_token))


# --- KV v2 ---------------------------------------------------------------------------------
def test_server_is_openbao_2_7(bao: OpenBaoServer) -> None:
    assert bao.version.startswith("2.7."), bao.version
    assert bao.start_seconds < 30


def test_put_get_roundtrip_under_mount_and_prefix(
    store: VaultSecretStore, root: hvac.Client
) -> None:
    assert store.get("practices/nc07-cloud023/db-password") is None
    store.put("practices/nc07-cloud023/db-password", "s3cr3t-value")
    assert store.get("practices/nc07-cloud023/db-password") == "s3cr3t-value"
    raw = root.secrets.kv.v2.read_secret_version(
        path=f"{PREFIX}/practices/nc07-cloud023/db-password",
        mount_point=MOUNT,
        raise_on_deleted_version=True,
    )
    assert raw["data"]["data"] == {"value": "s3cr3t-value"}
    store.put("practices/nc07-cloud023/db-password", "second")
    assert store.get("practices/nc07-cloud023/db-password") == "second"
    assert versions(root, "practices/nc07-cloud023/db-password") == 2


def test_ensure_generates_once_with_check_and_set(
    store: VaultSecretStore, root: hvac.Client
) -> None:
    first = store.ensure("platform/keycloak-admin")
    assert len(first) >= 40
    assert store.ensure("platform/keycloak-admin", lambda: "other") == first
    assert versions(root, "platform/keycloak-admin") == 1
    # the server enforces cas=0 ("only if absent"): a second create is refused
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        root.secrets.kv.v2.create_or_update_secret(
            path=f"{PREFIX}/platform/keycloak-admin",
            secret={"value": "x"},
            cas=0,
            mount_point=MOUNT,
        )


def test_ensure_racing_threads_exactly_one_value_wins(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    """Eight stores (own clients) all read "missing", then all write with cas=0."""
    writers = 8
    barrier = threading.Barrier(writers, timeout=30)
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    generated: list[int] = []

    def run(n: int) -> None:
        try:
            s = open_vault(token_settings(bao, tmp_path, bao.root_token))

            def generator() -> str:
                generated.append(n)
                barrier.wait()  # every writer has seen "missing" before any writes
                return f"value-from-{n}"

            results[n] = s.ensure("practices/nc07-cloud023/oidc-client-secret", generator)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(generated) == writers  # all of them really raced
    assert len(set(results.values())) == 1 and len(results) == writers
    winner = next(iter(results.values()))
    assert store_value(root, "practices/nc07-cloud023/oidc-client-secret") == winner
    assert versions(root, "practices/nc07-cloud023/oidc-client-secret") == 1


def store_value(root: hvac.Client, path: str) -> str:
    raw = root.secrets.kv.v2.read_secret_version(
        path=f"{PREFIX}/{path}", mount_point=MOUNT, raise_on_deleted_version=True
    )
    return str(raw["data"]["data"]["value"])


@pytest.mark.slow
def test_ensure_racing_processes_exactly_one_value_wins(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    writers = 4
    barrier = ctx.Barrier(writers)
    queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=race_ensure,
            args=(bao.url, bao.root_token, str(tmp_path), barrier, queue, n),
        )
        for n in range(writers)
    ]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=90) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(results) == list(range(writers))
    assert len(set(results.values())) == 1
    assert store_value(root, RACE_PATH) == results[0]
    assert versions(root, RACE_PATH) == 1


def test_list_and_delete_prefix_removes_all_versions(
    store: VaultSecretStore, root: hvac.Client
) -> None:
    for path in (
        "practices/nc07-cloud023/db-password",
        "practices/nc07-cloud023/admin/password",
        "practices/nc08-cloud023/db-password",
        "practices/nc07-cloud0234/x",
        "platform/keycloak-admin",
    ):
        store.put(path, "v1")
        store.put(path, "v2")
    assert store.list("practices/nc07-cloud023") == [
        "practices/nc07-cloud023/admin/password",
        "practices/nc07-cloud023/db-password",
    ]
    assert store.delete("practices/nc07-cloud023") == 2
    for gone in ("practices/nc07-cloud023/db-password", "practices/nc07-cloud023/admin/password"):
        # metadata and every version are gone (not just a soft-deleted latest version)
        with pytest.raises(hvac.exceptions.InvalidPath):
            root.secrets.kv.v2.read_secret_metadata(path=f"{PREFIX}/{gone}", mount_point=MOUNT)
    assert versions(root, "practices/nc07-cloud0234/x") == 2  # a neighbour, not below it
    assert store.get("practices/nc07-cloud023/db-password") is None
    assert store.delete("practices/nc07-cloud023") == 0
    assert store.delete("platform/keycloak-admin") == 1  # a single secret as prefix
    assert store.list("practices") == [
        "practices/nc07-cloud0234/x",
        "practices/nc08-cloud023/db-password",
    ]
    with pytest.raises(SecretStoreError):
        store.delete("")


# --- auth ----------------------------------------------------------------------------------
def test_approle_login_and_bad_secret_id(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    role_id, secret_id = make_role(root, "smartpraxx-login")
    s = open_vault(approle_settings(bao, tmp_path, role_id, secret_id))
    assert s.logins == 1
    s.put("platform/x", "y")
    assert s.get("platform/x") == "y"
    info = root.auth.token.lookup(s.client.token)["data"]
    assert info["policies"] == [POLICY]
    assert info["meta"]["role_name"] == "smartpraxx-login"
    wrong = "0" * 8 + secret_id[8:]
    with pytest.raises(SecretStoreError) as err:
        open_vault(approle_settings(bao, tmp_path, role_id, wrong))
    text = str(err.value) + str(err.value.hint) + str(err.value.obj)
    assert wrong not in text and secret_id not in text


def test_bad_token_is_refused_without_leaking_it(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    s = open_vault(token_settings(bao, tmp_path, "hvs.wrong-token-0123"))
    with pytest.raises(SecretStoreError, match="refused") as err:
        s.get("platform/x")
    assert "hvs.wrong-token-0123" not in str(err.value) + str(err.value.hint) + str(err.value.obj)


# --- token renewal -------------------------------------------------------------------------
@pytest.mark.slow
def test_approle_token_is_renewed_then_replaced_by_a_new_login(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    """token_ttl 3 s, token_max_ttl 7 s: the store renews (renew-self) while it can and logs in
    again when the max TTL caps the renewal; every operation over 10 s succeeds."""
    role_id, secret_id = make_role(root, "smartpraxx-short", token_ttl="3s", token_max_ttl="7s")
    s = open_vault(approle_settings(bao, tmp_path, role_id, secret_id))
    first = s.client.token
    # control: a token of this role that nobody renews is refused after its TTL
    unrenewed = hvac.Client(url=bao.url)
    unrenewed.auth.approle.login(role_id=role_id, secret_id=secret_id)
    started = time.monotonic()
    tokens: list[tuple[float, str]] = []
    n = 0
    while time.monotonic() - started < 10:
        s.put("platform/renewal", f"v{n}")
        assert s.get("platform/renewal") == f"v{n}"
        tokens.append((time.monotonic() - started, s.client.token))
        n += 1
        time.sleep(0.4)
    assert s.renewals >= 1, "the token was never renewed"
    assert s.logins >= 2, "no new AppRole login after the max TTL"
    # the first token was still the store's token past its initial 3 s TTL: renewed for real
    assert any(t > 3.2 and tok == first for t, tok in tokens)
    assert tokens[-1][1] != first
    with pytest.raises(hvac.exceptions.Forbidden):
        unrenewed.secrets.kv.v2.read_secret_version(
            path=f"{PREFIX}/platform/renewal", mount_point=MOUNT, raise_on_deleted_version=True
        )
    # and the first token is dead by now (its 7 s max TTL is over), yet the store works
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=bao.url, token=first).secrets.kv.v2.read_secret_version(
            path=f"{PREFIX}/platform/renewal", mount_point=MOUNT, raise_on_deleted_version=True
        )
    assert s.get("platform/renewal") == f"v{n - 1}"


@pytest.mark.slow
def test_given_token_is_renewed_before_expiry(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    """vault_auth: token with a renewable 3 s token: renew-self keeps it alive for 6 s."""
    token = root.auth.token.create(
        policies=[POLICY], no_default_policy=True, ttl="3s", renewable=True
    )["auth"]["client_token"]
    s = open_vault(token_settings(bao, tmp_path, token))
    started = time.monotonic()
    while time.monotonic() - started < 6:
        s.put("platform/given", "v")
        assert s.get("platform/given") == "v"
        time.sleep(0.4)
    assert s.renewals >= 2
    assert s.logins == 0 and s.client.token == token
    # a token that cannot be renewed past its max TTL: once over, Vault's refusal names it
    short = root.auth.token.create(
        policies=[POLICY], no_default_policy=True, ttl="2s", explicit_max_ttl="2s"
    )["auth"]["client_token"]
    s2 = open_vault(token_settings(bao, tmp_path, short))
    s2.put("platform/given", "w")
    time.sleep(2.5)
    with pytest.raises(SecretStoreError, match="refused") as err:
        s2.get("platform/given")
    assert "SMARTPRAXX_VAULT_TOKEN" in str(err.value.hint)
    assert short not in str(err.value) + str(err.value.hint)


def test_revoked_approle_token_is_replaced_and_policy_refusals_are_not_retried(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    """A token that dies before its TTL (revoked here; a host that slept past it is the same)
    gets one new AppRole login and a retry; a refusal by the policy is reported as it is."""
    role_id, secret_id = make_role(root, "smartpraxx-revoke", token_ttl="20m")
    s = open_vault(approle_settings(bao, tmp_path, role_id, secret_id))
    s.put("platform/revoke", "v1")
    first = s.client.token
    root.auth.token.revoke(first)
    assert s.get("platform/revoke") == "v1"
    assert s.logins == 2 and s.client.token != first
    outside = VaultSecretStore(
        s.client, mount=MOUNT, prefix="other", url=bao.url, approle=(role_id, secret_id)
    )
    with pytest.raises(SecretStoreError, match="refused"):
        outside.get("practices/nc07-cloud023/db-password")
    assert outside.logins == 0  # the token was alive: no login, no retry
    # a given token (vault_auth: token) cannot log in again: revoked means refused
    token = root.auth.token.create(policies=[POLICY], no_default_policy=True, ttl="20m")[
        "auth"
    ]["client_token"]
    given = open_vault(token_settings(bao, tmp_path, token))
    given.put("platform/revoke", "v2")
    root.auth.token.revoke(token)
    with pytest.raises(SecretStoreError, match="refused"):
        given.get("platform/revoke")


# --- the documented least-privilege policy -------------------------------------------------
def test_documented_policy_allows_what_the_tool_needs_and_nothing_else(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    """Exactly deploy/vault/smartpraxx-policy.hcl (no default policy) on an AppRole token."""
    applied = root.sys.read_policy(name=POLICY)["data"]["rules"]
    assert applied == POLICY_FILE.read_text()
    role_id, secret_id = make_role(root, "smartpraxx-policy", token_ttl="20m")
    s = open_vault(approle_settings(bao, tmp_path, role_id, secret_id))
    token = s.client.token
    assert root.auth.token.lookup(token)["data"]["policies"] == [POLICY]

    # everything the tool does: generate-once, read, overwrite, list (also from the top),
    # delete with all versions, look up and renew its own token
    db = s.ensure("practices/nc07-cloud023/db-password")
    assert s.ensure("practices/nc07-cloud023/db-password", lambda: "x") == db
    s.put("practices/nc07-cloud023/admin/password", "a1")
    s.put("practices/nc07-cloud023/admin/password", "a2")
    s.put("platform/keycloak-admin", "k")
    assert s.get("practices/nc07-cloud023/admin/password") == "a2"
    assert s.get("practices/nc07-cloud023/missing") is None
    assert s.list("practices") == [
        "practices/nc07-cloud023/admin/password",
        "practices/nc07-cloud023/db-password",
    ]
    assert s.list("platform") == ["platform/keycloak-admin"]
    assert s.delete("practices/nc07-cloud023") == 2
    assert s.delete("platform/keycloak-admin") == 1
    s._expires_at = time.monotonic() + 5  # due soon: the store renews through the policy
    s.fresh_token()
    assert s.renewals == 1 and s.logins == 1 and s.client.token == token

    # nothing outside the prefix
    root.secrets.kv.v2.create_or_update_secret(
        path="other/secret", secret={"value": "o"}, mount_point=MOUNT
    )
    root.secrets.kv.v2.create_or_update_secret(
        path=f"{PREFIX}/kept", secret={"value": "k"}, mount_point=MOUNT
    )
    raw = hvac.Client(url=bao.url, token=token)
    kv = raw.secrets.kv.v2
    forbidden: list[tuple[str, Any]] = [
        ("read another path", lambda: kv.read_secret_version(path="other/secret", mount_point=MOUNT, raise_on_deleted_version=True)),
        ("write another path", lambda: kv.create_or_update_secret(path="other/new", secret={"value": "x"}, mount_point=MOUNT)),
        ("write a look-alike prefix", lambda: kv.create_or_update_secret(path=f"{PREFIX}-evil/x", secret={"value": "x"}, mount_point=MOUNT)),
        ("list the mount", lambda: kv.list_secrets(path="", mount_point=MOUNT)),
        ("list another path", lambda: kv.list_secrets(path="other", mount_point=MOUNT)),
        ("delete another path", lambda: kv.delete_metadata_and_all_versions(path="other/secret", mount_point=MOUNT)),
        ("read metadata", lambda: kv.read_secret_metadata(path=f"{PREFIX}/kept", mount_point=MOUNT)),
        ("destroy versions", lambda: kv.destroy_secret_versions(path=f"{PREFIX}/kept", versions=[1], mount_point=MOUNT)),
        ("write policies", lambda: raw.sys.create_or_update_policy(name="evil", policy='path "*" { capabilities = ["sudo"] }')),
        ("read its policy", lambda: raw.sys.read_policy(name=POLICY)),
        ("mount an engine", lambda: raw.sys.enable_secrets_engine("kv", path="evil")),
        ("change the AppRole", lambda: raw.auth.approle.create_or_update_approle(role_name="smartpraxx-policy", token_policies=["root"])),
        ("mint a secret id", lambda: raw.auth.approle.generate_secret_id(role_name="smartpraxx-policy")),
        ("create a token", lambda: raw.auth.token.create(policies=[POLICY])),
        ("use the cubbyhole", lambda: raw.write("cubbyhole/x", value="1")),
    ]  # fmt: skip
    allowed = []
    for what, call in forbidden:
        try:
            call()
            allowed.append(what)
        except hvac.exceptions.Forbidden:
            pass
    assert not allowed, f"the policy allows: {allowed}"
    assert store_value(root, "kept") == "k"  # untouched by the refused destroy
    # the store reports a path outside its policy as refused
    outside = VaultSecretStore(raw, mount=MOUNT, prefix="other", url=bao.url)
    with pytest.raises(SecretStoreError, match="refused"):
        outside.get("practices/nc07-cloud023/db-password")


def test_provision_secrets_and_decommission_delete_through_the_policy(
    bao: OpenBaoServer, root: hvac.Client, tmp_path: Path
) -> None:
    """The operations' own calls with an AppRole token of the documented policy: provision's
    ensure_slot_secrets (generate once, idempotent) and decommission's delete of the practice's
    prefix (every version and the metadata; the neighbour slot keeps its secrets)."""
    role_id, secret_id = make_role(root, "smartpraxx-ops", token_ttl="20m")
    ctx = OpContext(settings=approle_settings(bao, tmp_path, role_id, secret_id))
    spec = load_practice_spec(REPO_ROOT / "starter_excel_samples" / "mvz-rheinaue.xlsx")
    slot, neighbour = Slot("cloud023", 7), Slot("cloud023", 8)
    created = ensure_slot_secrets(ctx, spec, slot)
    assert created >= 5
    assert ensure_slot_secrets(ctx, spec, neighbour) == created
    paths = ctx.secrets.list(practice_prefix(slot.id))
    assert len(paths) == created
    values = {p: ctx.secrets.require(p) for p in paths}
    assert ensure_slot_secrets(ctx, spec, slot) == 0  # a re-run generates nothing
    assert {p: ctx.secrets.require(p) for p in paths} == values
    assert all(versions(root, p) == 1 for p in paths)
    ctx.secrets.put(paths[0], "rotated")  # a second version, deleted as well
    assert versions(root, paths[0]) == 2
    assert ctx.secrets.delete(practice_prefix(slot.id)) == created  # decommission's step
    for p in paths:
        with pytest.raises(hvac.exceptions.InvalidPath):
            root.secrets.kv.v2.read_secret_metadata(path=f"{PREFIX}/{p}", mount_point=MOUNT)
    assert len(ctx.secrets.list(practice_prefix(neighbour.id))) == created
