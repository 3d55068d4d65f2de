"""``provision`` with a Nextcloud image that lacks an ordered app, through the CLI.

The image is the stand-in built without Passwords (``NEXTCLOUD_STANDIN_WITHOUT_APPS``), as a
production image without Passwords baked in. The GP sample orders Passwords: ``provision``
exits 1 with an error naming the app, the image and the next step, the slot's Nextcloud is
left as installed (no app enabled, no login provider), and nobody is invited. The same
provision with an image that has the app then converges (containers recreated on the new
image, apps enabled, invitations sent).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.nextcloud import NextcloudAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack import mailsink
from smartpraxx_provision.devstack.images import IMAGES_DIR, from_tag
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.domain.ownership import LABEL_MANAGED
from smartpraxx_provision.operations.nextcloud_stack import slot_names
from smartpraxx_provision.starter import load_practice_spec
from tests.fixtures.docker_wait import remove_image

from .conftest import GP_SAMPLE, Cli

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def image_without_passwords(docker_engine: DockerEngine) -> Iterator[str]:
    base = load_settings(env={})
    if not docker_engine.image_exists(base.nextcloud_image):
        pytest.skip("stand-in image not built: run smartpraxx-provision dev-stack up")
    tag = f"smartpraxx/nextcloud-standin:{base.local_image_tag}-e2e-nopw-{os.getpid()}"
    docker_engine.build_image(
        IMAGES_DIR / "nextcloud-standin",
        tag,
        buildargs={"BASE_IMAGE": from_tag("nextcloud-standin", base.local_image_tag),
                   "NEXTCLOUD_STANDIN_WITHOUT_APPS": "passwords"},
        labels={LABEL_MANAGED: "true"},
    )
    yield tag
    remove_image(docker_engine, tag)


def test_ordered_app_missing_in_the_image_exits_1_naming_it(
    image_without_passwords: str, e2e: Cli, docker_engine: DockerEngine, mail_sink: Settings
) -> None:
    # (the image fixture comes first: set up before e2e, removed after e2e's teardown
    # removed the slot's containers that use it)
    mails_before = len(mailsink.list_messages(mail_sink))
    code, doc = e2e.json("--set", f"nextcloud_image={image_without_passwords}",
                         "provision", str(GP_SAMPLE), "--host", e2e.host, "--yes")
    assert code == 1, e2e.runs[-1].stderr[-2000:]
    error = doc["error"]
    text = f"{error['message']} {error.get('next', '')}"
    assert "passwords" in error["message"] and image_without_passwords in error["message"]
    assert "spreed" not in error["message"]
    assert "nextcloud_image" in text and "provision" in text
    human = e2e("--set", f"nextcloud_image={image_without_passwords}",
                "provision", str(GP_SAMPLE), "--host", e2e.host, "--yes")
    assert human.returncode == 1 and "passwords" in human.stderr
    # the slot's Nextcloud is as the image installed it
    slot = Slot.parse(error["details"]["slot"]) if "slot" in error.get("details", {}) else None
    assert slot is not None, error
    nc = NextcloudAdapter(docker_engine, slot_names(slot).app)
    apps = nc.app_list()
    assert "spreed" not in apps["enabled"] and "passwords" not in apps["disabled"]
    assert nc.oidc_providers() == []
    assert len(mailsink.list_messages(mail_sink)) == mails_before  # nobody invited

    # the next step the error names: an image with the app, the same provision again
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--host", e2e.host, "--yes")
    assert code == 0, e2e.runs[-1].stderr[-2000:]
    assert doc["slot"] == slot.id
    apps = NextcloudAdapter(docker_engine, slot_names(slot).app).app_list()
    assert {"passwords", "spreed", "deck", "forms", "user_oidc"} <= set(apps["enabled"])
    assert doc["invitations"]["sent"] == len(load_practice_spec(GP_SAMPLE).persons)
