"""The human summary of `provision`: what the smoke left out and, with shards, where the
realm lives."""

from __future__ import annotations

from typing import Any

from smartpraxx_provision.commands.ops_cmd import _provision_lines


def _result(**changes: Any) -> dict[str, Any]:
    return {"no_changes": True, "slot": "nc01-cloud001", "urls": {}, "billable_seats": 3,
            "nextcloud_standin": False, "identity_shard": "primary",
            "smoke": {"ok": True, "checks": [{"check": "apps"}] * 4, "skipped": []}, **changes}


def _lines(result: dict[str, Any]) -> list[str]:
    return list(_provision_lines(result, "praxis-a", None))  # type: ignore[arg-type]


def test_a_no_op_run_says_which_smoke_checks_it_left_out_and_how_to_run_them() -> None:
    skipped = {"ok": True, "checks": [{"check": "apps"}] * 4, "skipped": ["login", "nextcloud-login"]}
    [line] = [x for x in _lines(_result(smoke=skipped)) if x.strip().startswith("smoke")]
    assert line.endswith("passed (4 checks; not re-run, nothing changed: login, nextcloud-login "
                         "(smartpraxx-provision smoke praxis-a))")
    [full] = [x for x in _lines(_result()) if x.strip().startswith("smoke")]
    assert full.endswith("passed (4 checks)")


def test_the_realm_s_shard_is_named_when_it_is_not_the_primary() -> None:
    assert not [x for x in _lines(_result()) if "identity shard" in x]
    assert "  identity     realm on identity shard kc2" in _lines(_result(identity_shard="kc2"))
