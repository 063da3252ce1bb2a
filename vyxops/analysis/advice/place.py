"""Where fixes and recommended actions act, for the commands and links a person reads (never a token)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from vyxops.core.contract import Contract

FLY_DASHBOARD = "https://fly.io/apps/{app}"
SUPABASE_DASHBOARD = "https://supabase.com/dashboard/project/{ref}"


@dataclass(frozen=True)
class Place:
    """Where fixes act, for the commands and links a person reads (never a token)."""

    app: str
    project_ref: str | None  # None: commands say $SUPABASE_PROJECT_REF
    contract: Contract  # the team's function, secret, table and words, which commands name

    @property
    def table(self) -> str:
        return self.contract.table.name

    @property
    def app_arg(self) -> str:
        """The app as a shell argument."""
        return shlex.quote(self.app)

    @property
    def ref_arg(self) -> str:
        """The project ref as a shell argument (``"$SUPABASE_PROJECT_REF"`` when the plan does not know it)."""
        return shlex.quote(self.project_ref) if self.project_ref else '"$SUPABASE_PROJECT_REF"'

    def fly(self, page: str = "") -> str:
        """A Fly dashboard page of the app, e.g. ``machines``."""
        return FLY_DASHBOARD.format(app=self.app) + (f"/{page}" if page else "")

    def supabase(self, page: str) -> str:
        """A Supabase dashboard page of the project, e.g. ``functions/secrets``."""
        return SUPABASE_DASHBOARD.format(ref=self.project_ref or "_") + f"/{page}"
