"""The practice life cycle and the health verdict (pure rules, data-driven)."""

from __future__ import annotations

import pytest

from smartpraxx_provision.domain import lifecycle as lc
from smartpraxx_provision.errors import ConflictError

ALL = [s.value for s in lc.PracticeState]


@pytest.mark.parametrize("source", ALL)
@pytest.mark.parametrize("target", ALL)
def test_only_the_table_allows_a_transition(source: str, target: str) -> None:
    allowed = {(t.source.value, t.target.value) for t in lc.TRANSITIONS}
    if source == target:
        assert lc.transition(source, target) is None
    elif (source, target) in allowed:
        assert lc.transition(source, target) is not None
    else:
        with pytest.raises(ConflictError, match="cannot go from"):
            lc.transition(source, target)


def test_events_only_on_activation_and_tombstone() -> None:
    events = {(t.source, t.target): t.event for t in lc.TRANSITIONS if t.event}
    assert events == {
        (lc.S.PROVISIONING, lc.S.ACTIVE): "provisioned",
        (lc.S.DECOMMISSIONING, lc.S.DECOMMISSIONED): "decommissioned",
    }
    # a decommission is final; nothing leads back to active from it
    assert not [t for t in lc.TRANSITIONS if t.source is lc.S.DECOMMISSIONED]
    assert not [t for t in lc.TRANSITIONS if t.source is lc.S.DECOMMISSIONING
                and t.target is not lc.S.DECOMMISSIONED]


@pytest.mark.parametrize(
    ("state", "hint"),
    [("decommissioning", "decommission praxis-a --export-to"), ("tombstoned", "practices list")],
)
def test_provision_refused_while_decommissioning_or_after(state: str, hint: str) -> None:
    with pytest.raises(ConflictError) as err:
        lc.check_operation("provision", state, "praxis-a")
    assert "praxis-a" in err.value.message and err.value.exit_code == 1
    assert hint in (err.value.hint or "")


def test_suspension_refuses_provision_not_decommission() -> None:
    with pytest.raises(ConflictError, match="suspended") as err:
        lc.check_operation("provision", "active", "praxis-a", suspended=True)
    assert "resume praxis-a" in (err.value.hint or "")
    lc.check_operation("decommission", "active", "praxis-a", suspended=True)
    for state in ("allocated", "provisioning", "active", "failed"):
        lc.check_operation("provision", state, "praxis-a")


RUNNING = {r: ("running", "healthy") for r in ("db", "redis", "app", "cron")}


@pytest.mark.parametrize(
    ("facts", "verdict", "reason"),
    [
        (lc.HealthFacts("active", containers=RUNNING, realm="enabled"), "ok", None),
        (lc.HealthFacts("active", containers={**RUNNING, "db": ("exited", None)},
                        realm="enabled"), "down", "db container exited"),
        (lc.HealthFacts("active", containers={k: v for k, v in RUNNING.items() if k != "redis"},
                        realm="enabled"), "down", "redis container missing"),
        (lc.HealthFacts("active", containers={**RUNNING, "cron": ("exited", None)},
                        realm="enabled"), "degraded", "cron container exited"),
        (lc.HealthFacts("active", containers={**RUNNING, "app": ("running", "unhealthy")},
                        realm="enabled"), "down", "app container unhealthy"),
        (lc.HealthFacts("active", containers=RUNNING, realm="missing"), "down", "realm missing"),
        (lc.HealthFacts("active", containers=RUNNING, realm="disabled"), "down", "realm disabled"),
        (lc.HealthFacts("active", suspended=True, containers=RUNNING, realm="disabled"),
         "ok", "suspended"),
        (lc.HealthFacts("active", containers=RUNNING, realm="enabled", smoke_failed=("login",)),
         "degraded", "last smoke failed: login"),
        (lc.HealthFacts("active", containers=RUNNING, realm="enabled",
                        last_operation="provision interrupted in step nextcloud"),
         "degraded", "interrupted"),
        (lc.HealthFacts("failed", containers={}, realm="missing"), "down", "failed"),
        (lc.HealthFacts("decommissioning", containers={}, realm="enabled"), "down",
         "decommissioned"),
        (lc.HealthFacts("active", engine_error="does not answer", realm="enabled"), "down",
         "Docker engine"),
        (lc.HealthFacts("active", containers=RUNNING, realm_error="Keycloak down"), "down",
         "Keycloak"),
    ],
)
def test_verdict(facts: lc.HealthFacts, verdict: str, reason: str | None) -> None:
    got, reasons = lc.verdict(facts)
    assert got == verdict, reasons
    if reason:
        assert any(reason in r for r in reasons), reasons
    else:
        assert reasons == []


def test_worst_and_exit_codes() -> None:
    assert lc.worst([]) == "ok"
    assert lc.worst(["ok", "degraded", "ok"]) == "degraded"
    assert lc.worst(["degraded", "down"]) == "down"
    assert lc.VERDICT_EXIT == {"ok": 0, "degraded": 3, "down": 4}
