"""Apps that exist: the converge checks what the slot's image can serve before enabling.

Real Docker engine, real MariaDB and Redis, and a variant of the Nextcloud stand-in image
built WITHOUT the Passwords app (build arg ``NEXTCLOUD_STANDIN_WITHOUT_APPS=passwords``), as a
production image without Passwords baked in would be. Like real Nextcloud without a reachable
app store, that image's ``occ app:enable passwords`` exits 1; the converge must refuse before
that, naming the app and the image, and change nothing. A practice that does not order
Passwords converges on the same image with the apps enabled in one ``app:enable`` call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.nextcloud import NextcloudAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack.images import IMAGES_DIR, from_tag
from smartpraxx_provision.domain.model import AppChoice, PracticeSpec, PracticeType, Slot
from smartpraxx_provision.domain.ownership import LABEL_MANAGED, LABEL_SLOT
from smartpraxx_provision.errors import EXIT_FAILED, OperationFailed
from smartpraxx_provision.operations.nextcloud_stack import (
    configure_nextcloud,
    launch_stack,
    remove_stack,
    slot_names,
)
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.bundle import desired_apps, realm_issuer
from smartpraxx_provision.secrets import FileSecretStore
from tests.fixtures.docker_wait import remove_image

pytestmark = pytest.mark.integration

HOST = f"cloud8{os.getpid() % 100:02d}"
SLOT = Slot(HOST, 1)
SPEC_WITH_PASSWORDS = PracticeSpec(
    praxisname="praxis-apps-all",
    display_name="Praxis mit Passwörtern",
    practice_type=PracticeType.ARZTPRAXIS,
    kv="KV Nordrhein",
    specialties=(),
    order_id="IT-APPS-1",
    contact_email="apps@example.org",
)
SPEC_WITHOUT_PASSWORDS = PracticeSpec(
    praxisname="praxis-apps-all",
    display_name="Praxis mit Passwörtern",
    practice_type=PracticeType.ARZTPRAXIS,
    kv="KV Nordrhein",
    specialties=(),
    order_id="IT-APPS-1",
    contact_email="apps@example.org",
    apps=AppChoice(passwords=False),
)


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    eng = DockerEngine()
    if not eng.answers():
        pytest.skip("Docker engine at /var/run/docker.sock does not answer")
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def image(engine: DockerEngine) -> Iterator[str]:
    """The stand-in image without Passwords (built here from the same sources, removed after)."""
    base = load_settings(env={})
    built_from = from_tag("nextcloud-standin", base.local_image_tag)
    if not engine.image_exists(built_from) or not engine.image_exists(base.nextcloud_image):
        pytest.skip("stand-in images are not built: run smartpraxx-provision dev-stack up")
    tag = f"smartpraxx/nextcloud-standin:{base.local_image_tag}-nopw-{os.getpid()}"
    engine.build_image(
        IMAGES_DIR / "nextcloud-standin",
        tag,
        buildargs={"BASE_IMAGE": from_tag("nextcloud-standin", base.local_image_tag),
                   "NEXTCLOUD_STANDIN_WITHOUT_APPS": "passwords"},
        labels={LABEL_MANAGED: "true"},
    )
    try:
        yield tag
    finally:
        remove_image(engine, tag)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, engine: DockerEngine, image: str) -> Settings:
    state = tmp_path_factory.mktemp("nc-apps-state")
    cfg = load_settings(
        env={},
        overrides={"state_dir": str(state), "health_timeout": "150", "nextcloud_image": image},
    )
    for needed in (cfg.mariadb_image, cfg.redis_image):
        if not engine.image_exists(needed):
            pytest.skip(f"image {needed} is not built: run smartpraxx-provision dev-stack up")
    return cfg


@pytest.fixture(scope="module")
def store(settings: Settings) -> FileSecretStore:
    return FileSecretStore(settings.secrets_dir)


@pytest.fixture(scope="module")
def stack(
    engine: DockerEngine, settings: Settings, store: FileSecretStore
) -> Iterator[dict[str, Any]]:
    reporter = Reporter(quiet=True)
    try:
        yield launch_stack(engine, SPEC_WITH_PASSWORDS, SLOT, settings, store, reporter)
    finally:
        remove_stack(engine, SLOT, reporter)
        assert not engine.list_containers({LABEL_SLOT: SLOT.id})


def _snapshot(nc: NextcloudAdapter) -> tuple[Any, ...]:
    return nc.config_list(), nc.app_list(), nc.oidc_providers()


def test_ordered_app_missing_from_image_stops_before_any_change(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stack: dict[str, Any]
) -> None:
    nc = NextcloudAdapter(engine, slot_names(SLOT).app)
    apps = nc.app_list()
    assert "passwords" not in apps["enabled"] and "passwords" not in apps["disabled"]
    before = _snapshot(nc)
    issuer = realm_issuer(settings, SLOT)
    for dry_run in (True, False):
        probe = NextcloudAdapter(engine, nc.container)
        with pytest.raises(OperationFailed) as err:
            configure_nextcloud(
                probe, SPEC_WITH_PASSWORDS, SLOT, settings, store, Reporter(quiet=True),
                issuer=issuer, dry_run=dry_run,
            )
        exc = err.value
        assert exc.exit_code == EXIT_FAILED == 1
        assert "passwords" in exc.message and settings.nextcloud_image in exc.message
        assert "nothing was changed" in exc.message
        assert "spreed" not in exc.message  # only what is really missing is named
        assert exc.obj == nc.container
        assert exc.hint and "nextcloud_image" in exc.hint
        assert exc.details["missing_apps"] == ["passwords"]
        assert probe.mutating_calls == 0, probe.history
        assert "app:enable" not in probe.history
    assert _snapshot(nc) == before


def test_apps_the_image_has_are_enabled_in_one_call(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stack: dict[str, Any]
) -> None:
    nc = NextcloudAdapter(engine, slot_names(SLOT).app)
    initially = nc.app_list()["enabled"]
    assert "spreed" not in initially  # in the image, not enabled yet
    result = configure_nextcloud(
        nc, SPEC_WITHOUT_PASSWORDS, SLOT, settings, store, Reporter(quiet=True),
        issuer=realm_issuer(settings, SLOT),
    )
    assert nc.history.count("app:enable") == 1, nc.history
    apps = nc.app_list()
    plan = desired_apps(SPEC_WITHOUT_PASSWORDS)
    assert set(plan.enable) <= set(apps["enabled"]), plan.enable
    assert "passwords" not in apps["enabled"]
    enabled = sorted(c for c in result.changes if c.endswith(" enabled"))
    assert enabled == [f"app {a} enabled" for a in plan.enable if a not in initially]
    assert "app spreed enabled" in enabled
    again = NextcloudAdapter(engine, nc.container)
    second = configure_nextcloud(
        again, SPEC_WITHOUT_PASSWORDS, SLOT, settings, store, Reporter(quiet=True),
        issuer=realm_issuer(settings, SLOT),
    )
    assert second.mutating_calls == 0 and second.changes == []
