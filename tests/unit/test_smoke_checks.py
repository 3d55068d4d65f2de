"""The smoke checks with fake doors: the tool's own user_oidc provider is read (by its id,
not the first one listed), the discovery document comes through the Keycloak door, and a
check that raises is recorded as failed while the checks after it still run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.inventory.models import PracticeRecord
from smartpraxx_provision.operations import smoke
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.smoke import SmokeCheck, SmokeResult, last_smoke_ok
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.bundle import OIDC_PROVIDER_ID

ISSUER = "https://mein.example/realms/nc07-cloud023"


class FakeNextcloud:
    def __init__(self, providers: list[dict[str, Any]]) -> None:
        self.providers = providers

    def oidc_providers(self) -> list[dict[str, Any]]:
        return self.providers

    def app_list(self) -> dict[str, dict[str, str]]:
        raise RuntimeError("occ app:list crashed")


class FakeKeycloak:
    def clients(self, realm: str) -> list[dict[str, Any]]:
        return [{"clientId": "nextcloud"}]


class FakeRecord:
    slot = Slot(host="cloud023", number=7)
    apps = ("spreed",)


def _smoke(settings: Settings, providers: list[dict[str, Any]]) -> smoke._Smoke:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    return smoke._Smoke(ctx, FakeRecord(), FakeKeycloak(), FakeNextcloud(providers), ISSUER)  # type: ignore[arg-type]


def test_discovery_reads_the_tools_own_provider_through_the_door(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    internal = settings.keycloak_internal_url.rstrip("/")
    fetched: list[str] = []

    def door(url: str, *, timeout: float = 10.0) -> dict[str, Any]:
        fetched.append(url)
        return {
            "issuer": ISSUER,
            "token_endpoint": f"{internal}/realms/x/token",
            "jwks_uri": f"{internal}/realms/x/certs",
        }

    monkeypatch.setattr(smoke, "discovery_document", door)
    run = _smoke(
        settings,
        [
            {"identifier": "someone-else", "discoveryEndpoint": "http://foreign/.well-known"},
            {"identifier": OIDC_PROVIDER_ID, "discoveryEndpoint": "http://ours/.well-known"},
        ],
    )
    run.discovery()
    assert fetched == ["http://ours/.well-known"]
    assert run.checks == [
        SmokeCheck(
            "oidc-discovery",
            True,
            f"issuer {ISSUER} (expected {ISSUER}); token/JWKS "
            f"{internal}/realms/x/token, {internal}/realms/x/certs (expected on {internal})",
        )
    ]


def test_discovery_without_the_tools_provider_fails_naming_the_others(settings: Settings) -> None:
    run = _smoke(settings, [{"identifier": "someone-else", "discoveryEndpoint": "http://x"}])
    run.discovery()
    assert run.checks == [
        SmokeCheck(
            "oidc-discovery",
            False,
            f"no user_oidc provider {OIDC_PROVIDER_ID} with a discovery URI in "
            "Nextcloud (providers: someone-else)",
        )
    ]


def test_a_check_that_raises_is_recorded_and_the_next_one_runs(settings: Settings) -> None:
    run = _smoke(settings, [])
    run.apps()  # app:list raises
    run.client()
    assert run.checks == [
        SmokeCheck("apps", False, "RuntimeError: occ app:list crashed"),
        SmokeCheck("oidc-client", True, "client nextcloud in realm nc07-cloud023"),
    ]


def test_the_smoke_result_document_keeps_its_keys_and_order() -> None:
    result = SmokeResult(
        ok=False,
        praxisname="praxis-a",
        slot="nc07-cloud023",
        checks=(SmokeCheck("apps", False, "missing: deck"),),
        at=1700000000,
    )
    doc = result.to_json()
    assert list(doc) == ["ok", "praxisname", "slot", "checks", "at", "skipped"]
    assert doc["checks"] == [{"check": "apps", "ok": False, "detail": "missing: deck"}]
    assert list(doc["checks"][0]) == ["check", "ok", "detail"]


@pytest.mark.parametrize(("stored", "ok"), [
    (None, False), ("not json", False), ('{"ok": false}', False), ('{"ok": true}', True),
])
def test_a_no_op_provision_skips_the_logins_only_after_a_passed_smoke(
    stored: str | None, ok: bool
) -> None:
    record = PracticeRecord(
        praxisname="praxis-a", slot=Slot("cloud023", 7), realm="nc07-cloud023", order_id="o",
        display_name="A", kv="KV Bayern", specialties=(), billable_seats=1, state="active",
        created_at=datetime.now(UTC), updated_at=datetime.now(UTC), last_smoke=stored,
    )
    assert last_smoke_ok(record) is ok
