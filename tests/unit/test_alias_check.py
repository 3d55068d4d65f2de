"""The alias check of a placement (``require_alias_free``): one brief realm listing per
identity shard; only realms this inventory does not know are read in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.errors import SafetyRefusal
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.ownership import require_alias_free
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.realm import PRAXISNAME_ATTR


class _Shard:
    """A Keycloak door with fixed realms that counts the full reads."""

    def __init__(self, name: str, realms: dict[str, str]) -> None:
        self.shard, self.realms, self.reads = name, realms, []  # realm -> alias

    def realm_names(self) -> list[str]:
        return sorted(self.realms)

    def get_realm(self, name: str) -> dict[str, Any] | None:
        self.reads.append(name)
        return {"realm": name, "attributes": {PRAXISNAME_ATTR: self.realms[name]}}


@pytest.fixture()
def ctx(tmp_path: Path) -> OpContext:
    settings = load_settings(overrides={
        "state_dir": str(tmp_path), "public_scheme": "https",
        "identity_shards": "kc2=http://127.0.0.1:8280"})
    ctx = OpContext(settings, Reporter(quiet=True))
    ctx.inventory.add_host("cloud001", "unix:///var/run/docker.sock")
    ctx.inventory.allocate_practice("praxis-a", order_id="SO-1", display_name="A", kv="KV Bayern",
                                    specialties=(), billable_seats=1)
    return ctx


def _shards(ctx: OpContext, primary: dict[str, str], kc2: dict[str, str]) -> list[_Shard]:
    doors = [_Shard("primary", primary), _Shard("kc2", kc2)]
    ctx._keycloaks.update({d.shard: d for d in doors})  # type: ignore[misc]
    return doors


def test_an_unknown_realm_with_the_alias_on_any_shard_is_refused(ctx: OpContext) -> None:
    primary, kc2 = _shards(ctx, {"nc01-cloud001": "praxis-a"}, {"nc02-cloud001": "praxis-neu"})
    with pytest.raises(SafetyRefusal, match="alias of realm nc02-cloud001") as err:
        require_alias_free(ctx, "praxis-neu", None)
    assert "practices adopt praxis-neu --slot nc02-cloud001" in err.value.hint
    # the inventory's own realm is not read; the unknown one is
    assert (primary.reads, kc2.reads) == ([], ["nc02-cloud001"])


def test_realms_of_other_hosts_and_other_aliases_pass(ctx: OpContext) -> None:
    primary, kc2 = _shards(ctx, {"nc01-cloud001": "praxis-a", "nc01-cloud999": "praxis-neu"},
                           {"nc02-cloud001": "praxis-alt", "master": "x"})
    require_alias_free(ctx, "praxis-neu", None)
    assert (primary.reads, kc2.reads) == ([], ["nc02-cloud001"])
