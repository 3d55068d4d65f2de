"""One exception hierarchy for the whole tool.

Every error names the object it is about and the next command an operator should run.
The CLI formats them once (``cli.py``); exit codes: 0 ok, 1 operation failed, 2 usage or
input error. Messages never contain secrets or staff personal data.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class SmartpraxxError(Exception):
    """Base of every error the tool raises on purpose.

    ``obj`` names the thing the error is about (a file, a practice, a slot, a container,
    a service); ``hint`` is the next command or action for the operator; ``details`` is
    extra machine-readable context for ``--json`` output (never secrets, never staff data).
    """

    exit_code: int = EXIT_FAILED
    kind: str = "failed"

    def __init_subclass__(
        cls, *, kind: str | None = None, exit_code: int | None = None, **kw: Any
    ) -> None:
        """``class X(SmartpraxxError, kind="x", exit_code=EXIT_USAGE)``: a subclass names its
        ``kind`` (``--json``: ``error.kind``) and exit code in its header; unset: the parent's."""
        super().__init_subclass__(**kw)
        if kind is not None:
            cls.kind = kind
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(
        self,
        message: str,
        *,
        obj: str | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.obj = obj
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.obj:
            out["object"] = self.obj
        if self.hint:
            out["next"] = self.hint
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return self.message


# --- usage and input (exit 2) -------------------------------------------------------


class UsageError(SmartpraxxError, kind="usage", exit_code=EXIT_USAGE):
    """The operator's call or input is wrong; nothing was changed."""


class ConfigError(UsageError, kind="config"):
    """A setting (smartpraxx.yaml, SMARTPRAXX_* variable or flag) is invalid."""


class StarterExcelError(UsageError, kind="starter-excel"):
    """The Starter Excel cannot be read or does not validate.

    ``report`` is the full validation report (all problems at once) when there is one.
    """

    def __init__(self, message: str, *, report: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.report = report


class NotFoundError(UsageError, kind="not-found"):
    """A named object (practice, host, slot, realm) does not exist."""


# --- operation failures (exit 1) ----------------------------------------------------


class ConflictError(SmartpraxxError, kind="conflict"):
    """The requested change collides with existing state: a name taken, a slot in use,
    another operation running on the same practice."""


class ServiceUnavailableError(SmartpraxxError, kind="service-unavailable"):
    """An external system (Docker engine, Keycloak, Vault, database) cannot be reached."""


class ExternalServiceError(SmartpraxxError, kind="service-error"):
    """An external system answered, but refused or failed the request."""


class SecretStoreError(SmartpraxxError, kind="secret-store"):
    """The secret store refused or failed (a bad path, a missing secret, a lost write)."""


class InventoryError(SmartpraxxError, kind="inventory"):
    """The inventory database failed, or refused a change it does not allow."""


class OperationFailed(SmartpraxxError, kind="operation-failed"):
    """A step of an operation failed; the journal says which, a re-run resumes."""


class SafetyRefusal(SmartpraxxError, kind="refused"):
    """A guarded destructive step refused to run (e.g. export not verified)."""
