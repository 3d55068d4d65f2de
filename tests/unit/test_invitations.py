"""Pure parts of the invitations: which users get a mail, which actions, which settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartpraxx_provision.config import Settings, load_settings, replace
from smartpraxx_provision.errors import ConfigError
from smartpraxx_provision.operations import invitations
from smartpraxx_provision.secrets import FileSecretStore


def user(actions: list[str], invited: str | None = None, enabled: bool = True) -> dict[str, object]:
    attrs = {invitations.INVITED_ATTR: [invited]} if invited else {}
    return {"id": "x", "requiredActions": actions, "attributes": attrs, "enabled": enabled}


def test_who_needs_an_invitation() -> None:
    assert invitations.needs_invitation(user(["UPDATE_PASSWORD"]))
    assert not invitations.needs_invitation(user(["UPDATE_PASSWORD"], "2026-12-01T10:00:00Z"))
    assert not invitations.needs_invitation(user([]))  # has a password already
    assert not invitations.needs_invitation(user(["UPDATE_PASSWORD"], enabled=False))


def test_mail_actions_in_keycloaks_order() -> None:
    assert invitations.mail_actions(user(["CONFIGURE_TOTP", "UPDATE_PASSWORD"])) == [
        "UPDATE_PASSWORD", "CONFIGURE_TOTP"]
    assert invitations.mail_actions(user(["VERIFY_EMAIL", "UPDATE_PASSWORD"])) == [
        "UPDATE_PASSWORD", "VERIFY_EMAIL"]
    assert invitations.mail_actions(user([])) == ["UPDATE_PASSWORD"]  # a resend to a set-up user


def test_invited_attribute_is_admin_only() -> None:
    attr = invitations.invited_attribute()
    assert attr["name"] == "smartpraxx_invited_at"
    assert attr["permissions"] == {"view": ["admin"], "edit": ["admin"]}


def test_production_refuses_without_mail_settings(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "secrets")
    prod = load_settings(env={}, overrides={"profile": "production", "state_dir": str(tmp_path)})
    with pytest.raises(ConfigError) as err:
        invitations.require_mail_settings(prod, store)
    assert err.value.exit_code == 2
    assert "smtp_host" in err.value.message and "smtp_from" in err.value.message
    ok = replace(prod, smtp_host="relay.example.org", smtp_from="noreply@example.org")
    invitations.require_mail_settings(ok, store)
    # a relay user needs its password in the secret store, named in the error
    with_user = replace(ok, smtp_user="mailer")
    with pytest.raises(ConfigError) as err:
        invitations.require_mail_settings(with_user, store)
    assert invitations.SMTP_PASSWORD_SECRET in err.value.message
    store.put(invitations.SMTP_PASSWORD_SECRET, "relay-password-123")
    invitations.require_mail_settings(with_user, store)


def test_embedded_defaults_need_nothing(settings: Settings, tmp_path: Path) -> None:
    assert invitations.mail_settings_problems(settings, FileSecretStore(tmp_path / "s")) == []
