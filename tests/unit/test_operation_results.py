"""The typed operation results keep the JSON documents the CLI prints: same keys, same order."""

from __future__ import annotations

from smartpraxx_provision.operations.decommission import DecommissionResult
from smartpraxx_provision.operations.ownership import HostScan, ScannedObject
from smartpraxx_provision.operations.provision import ProvisionResult


def test_provision_result_document() -> None:
    result = ProvisionResult(
        operation="op-1",
        praxisname="praxis-a",
        slot="nc07-cloud023",
        fqdn="nc07.cloud023.example",
        realm="nc07-cloud023",
        identity_shard="primary",
        urls={"nextcloud": "https://nc07.cloud023.example"},
        local_nextcloud_url="http://127.0.0.1:8080",
        changes=0,
        no_changes=True,
        billable_seats=3,
        occ_calls=12,
        smoke=None,
        invitations={"sent": 0},
        nextcloud_standin=False,
        skipped_hosts=[],
        images_copied=[],
        steps=[{"name": "allocate slot", "seconds": 0.1, "status": "ok"}],
        parallel_branches={"realm": 1.0, "stack": 2.0},
        seconds=3.0,
    )
    doc = result.to_json()
    assert list(doc) == [
        "ok", "operation", "praxisname", "slot", "fqdn", "realm", "identity_shard", "urls",
        "local_nextcloud_url", "changes", "no_changes", "billable_seats", "occ_calls",
        "smoke", "invitations", "nextcloud_standin", "skipped_hosts", "images_copied", "steps",
        "parallel_branches", "seconds",
    ]
    assert doc["ok"] is True
    assert doc["steps"] == [{"name": "allocate slot", "seconds": 0.1, "status": "ok"}]


def test_decommission_result_document() -> None:
    export = {"path": "/x/nc07-cloud023-praxis-a-export.tar", "sha256": "ab"}
    doc = DecommissionResult(
        operation="op-2", praxisname="praxis-a", slot="nc07-cloud023", export=export
    ).to_json()
    assert doc == {
        "ok": True, "operation": "op-2", "praxisname": "praxis-a", "slot": "nc07-cloud023",
        "export": export,
    }
    assert list(doc) == ["ok", "operation", "praxisname", "slot", "export"]


def test_host_scan_document_counts_verdicts_in_row_order() -> None:
    rows = (
        ScannedObject("nc01-cloud023", "container", "nc01-cloud023-app", "i1", "p1", "ours", "a"),
        ScannedObject("nc02-cloud023", "realm", "nc02-cloud023", "", "", "unlabelled", ""),
        ScannedObject("nc03-cloud023", "volume", "nc03-cloud023-data", "i2", "p9", "foreign", ""),
        ScannedObject("nc04-cloud023", "realm", "nc04-cloud023", "", "", "unlabelled", ""),
    )
    doc = HostScan(host="cloud023", installation="i1", objects=rows).to_json()
    assert list(doc) == ["host", "installation", "objects", "counts"]
    assert doc["counts"] == {"ours": 1, "unlabelled": 2, "foreign": 1}
    assert list(doc["counts"]) == ["ours", "unlabelled", "foreign"]
    assert doc["objects"][0] == {
        "slot": "nc01-cloud023", "kind": "container", "name": "nc01-cloud023-app",
        "installation": "i1", "practice": "p1", "verdict": "ours", "praxisname": "a",
    }
    assert list(doc["objects"][0]) == [
        "slot", "kind", "name", "installation", "practice", "verdict", "praxisname",
    ]
