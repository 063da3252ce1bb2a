"""What doctor's checks share: an outcome, a credential as configured, the run's context, a permission."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from vyxops.core import config
from vyxops.core.contract import Contract
from vyxops.core.errors import VyxopsError
from vyxops.core.facts import SUPABASE_MGMT_PERMISSIONS
from vyxops.fetch.session import Session
from vyxops.fetch.targets import Opened

Status = Literal["ok", "skipped", "problem"]
GROUPS = ("credentials", "APIs", "permissions", "contract", "database")


@dataclass(frozen=True)
class Outcome:
    """One check's answer. ``said`` is what was seen (ok, skipped) or what is wrong (problem)."""

    group: str
    check: str
    status: Status
    said: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<8} {self.group}: {self.check}: {self.said}"
        return f"{text} — fix: {self.fix}" if self.status == "problem" and self.fix else text

    def as_json(self) -> dict[str, str]:
        return {"group": self.group, "check": self.check, "status": self.status, "said": self.said, "fix": self.fix}


@dataclass(frozen=True)
class Credential:
    """A credential as configured: the variable that names it, its value (never shown) and where it came from."""

    variable: str
    value: str | None
    source: str
    problem: Callable[[str], str | None] | None = None
    how: str = ""  # how to get a good one


@dataclass
class Doctor:
    """What the checks share: the target, the app, the credentials and (once they pass) an open session."""

    target: config.Target
    app: str | None = None
    contract: str | None = None
    scenario: str | None = None
    environ: Mapping[str, str] | None = None
    credentials: list[Credential] = field(default_factory=list)
    opened: Opened | None = None
    session: Session | None = None
    first_app: str | None = None  # --app, else the org's first app (for the app-level API checks)
    mgmt: dict[tuple[str, str], int | str] = field(default_factory=dict)  # (method, template) -> status or error
    pipeline: Contract | None = None  # the contract the contract check resolved, for the checks after it

    @property
    def live(self) -> bool:
        return self.target.kind == "live"

    def fly_token(self) -> Credential:
        return next(c for c in self.credentials if c.variable.startswith("FLY_"))

    def fly_named(self) -> str:
        c = self.fly_token()
        return f"the Fly token ({c.source})"


Check = Callable[[Doctor], Iterator[Outcome]]


def problem(group: str, check: str, said: str, fix: str) -> Outcome:
    return Outcome(group, check, "problem", said, fix)


@dataclass(frozen=True)
class Permission:
    """A Management API endpoint vyxops calls, what it uses it for, and how to ask without changing anything."""

    method: str
    template: str
    why: str
    params: Mapping[str, str] | None = None
    body: object = None

    @property
    def permission(self) -> str:
        return SUPABASE_MGMT_PERMISSIONS[(self.method, self.template)]


class MissingPermission(VyxopsError):
    def __init__(self, p: Permission, *, project: bool) -> None:
        self.permission, self.project = p, project
        super().__init__(p.permission)
