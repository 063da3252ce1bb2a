"""Ad hoc exploration in JupyterLab: pickers over one target, timeline filtered live."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vyxops.evidence import Evidence, collect_evidence


class Explorer:
    """Loads one app's evidence and timeline, and offers ipywidgets to slice them."""

    def __init__(self, session: Any, app: str | None = None) -> None:
        self.session = session
        self.apps = [a["name"] for a in session.fly.list_apps(session.org)]
        self.app = app or (self.apps[0] if self.apps else "")
        self.evidence: Evidence
        self.timeline: pd.DataFrame
        self.load(self.app)

    def load(self, app: str, since: Any = None, until: Any = None) -> None:
        from vyxops.timeline import build_timeline

        self.app = app
        self.evidence = collect_evidence(self.session, app, since=since, until=until)
        self.timeline = build_timeline(**self.evidence.frames())

    def machines(self) -> list[str]:
        return sorted(self.evidence.machines["machine_id"].dropna().tolist())

    def view(self, machine_id: str | None = None, kinds: list[str] | None = None) -> pd.DataFrame:
        """The timeline for one machine (its rows and logs too) and some kinds."""
        from vyxops.timeline import filter_timeline

        tl = filter_timeline(self.timeline, machine_id=machine_id) if machine_id else self.timeline
        if kinds:
            tl = tl[tl["kind"].isin(kinds)]
        return tl[["time", "source", "entity", "kind", "message"]]

    def widget(self) -> Any:
        """An app picker, a machine picker and a kind filter over the timeline table."""
        import ipywidgets as w
        from IPython.display import display

        app_pick = w.Dropdown(options=self.apps, value=self.app, description="app")
        machine_pick = w.Dropdown(options=[("all", None)] + [(m, m) for m in self.machines()], description="machine")
        kinds = sorted(self.timeline["kind"].dropna().unique().tolist())
        kind_pick = w.SelectMultiple(options=kinds, value=(), description="kinds", rows=min(8, max(2, len(kinds))))
        out = w.Output()

        def refresh(*_: Any) -> None:
            with out:
                out.clear_output()
                display(self.view(machine_pick.value, list(kind_pick.value)))

        def change_app(change: Any) -> None:
            self.load(change["new"])
            machine_pick.options = [("all", None)] + [(m, m) for m in self.machines()]
            kind_pick.options = sorted(self.timeline["kind"].dropna().unique().tolist())
            refresh()

        app_pick.observe(change_app, names="value")
        machine_pick.observe(refresh, names="value")
        kind_pick.observe(refresh, names="value")
        refresh()
        return w.VBox([w.HBox([app_pick, machine_pick]), kind_pick, out])
