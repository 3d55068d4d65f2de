"""Support consent: the pure rules and the German texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartpraxx_provision.domain import support as dom
from smartpraxx_provision.errors import UsageError
from smartpraxx_provision.render import support as render

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("4h", 14400), ("7d", 604800)])
def test_durations(text: str, seconds: int) -> None:
    assert dom.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "4", "0h", "4w", "8d", "4m", "-1h", "1.5h"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        dom.parse_duration(text)


@pytest.mark.parametrize("ticket", ["", "a b", "-x", "x-", "ä", "a" * 33, "a/b"])
def test_bad_tickets(ticket: str) -> None:
    with pytest.raises(UsageError):
        dom.check_ticket(ticket)


def test_life_cycle_and_expiry() -> None:
    c = dom.new_request("SP-1", "  Kalender   hängt ", timedelta(hours=4), "nextcloud", T0, "tok")
    assert (c.ticket, c.reason, c.state) == ("sp-1", "Kalender hängt", "pending")
    assert c.token_ok("tok") and not c.token_ok("other")
    assert dom.Consent.from_json(c.to_json()) == c
    assert not c.lapsed(T0 + timedelta(days=2, hours=23)) and c.lapsed(T0 + timedelta(days=3))
    with pytest.raises(UsageError):  # more than asked for
        c.approve("uid-1", T0, timedelta(hours=5))
    a = c.approve("uid-1", T0 + timedelta(minutes=1))
    assert a.expires_at == "2026-12-02T14:01:00Z" and a.decided_by == "uid-1"
    assert not a.due(T0 + timedelta(hours=4)) and a.due(T0 + timedelta(hours=4, minutes=1))
    with pytest.raises(UsageError):
        a.decline("uid-1", T0)
    e = a.end(dom.EXPIRED, "sweep", T0 + timedelta(hours=5))
    assert e.state == "expired" and e.end(dom.REVOKED, "ops", T0) == e
    assert e.central() == {"ticket": "sp-1", "state": "expired",
                           "expires_at": "2026-12-02T14:01:00Z"}
    assert "token_sha256" not in e.public()
    d = c.decline("uid-2", T0)
    assert d.state == "declined" and not d.due(T0 + timedelta(days=30))


def test_records_from_realm_attributes() -> None:
    c = dom.new_request("sp-1", "r", timedelta(hours=1), "nextcloud", T0, "t")
    attrs = {dom.record_attr("sp-1"): c.to_json(), "smartpraxx.slot": "nc01-cloud001"}
    assert dom.records_from_attributes(attrs) == {"sp-1": c}


def test_german_texts_are_escaped_and_name_nobody() -> None:
    c = dom.new_request("sp-1", "<script>x</script>", timedelta(hours=4), "nextcloud", T0, "t")
    mail = render.consent_mail_text(c, "Praxis Dr. Müller", "https://x/support/consent/r/sp-1")
    assert "höchstens 4 Stunden" in mail and "support-sp-1" in mail
    assert "https://x/support/consent/r/sp-1" in mail
    page = render.consent_page(c, "Praxis Dr. Müller", "ft", "/support/decide")
    assert "<script>x" not in page and "&lt;script&gt;" in page
    assert 'lang="de"' in page and "Zustimmen" in page and "Ablehnen" in page
    report = render.export_report(c, "P", [{"time": "2026-12-02T10:00:00Z", "source": "Keycloak",
                                             "action": "LOGIN", "object": "nextcloud"}], "ab")
    assert "LOGIN" in report and "Aktionen (1)" in report and "ab" in report
    assert dom.german_duration(86400) == "1 Tag" and dom.german_duration(90 * 60) == "90 Minuten"
