# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
target = "sandbox"  # sandbox | live | bundle:PATH (tokens come from the environment only)
scenario = None  # sandbox scenario name or file; None keeps what the sandbox holds
contract = None  # the team's pipeline contract file; None: the project's vyxops.toml, else discovered
app = "vyx-app"
machine_id = None  # focus on one machine
since = None  # RFC 3339, the report's format, or a duration before `until` (2h); zone-less: read in `tz`
until = None  # as `since`; default the target's now
stuck_after_minutes = 10.0
tz = "UTC"  # time zone the report shows times in (an IANA name)
probe = False  # provision a canary first (logged, cleaned up) to see provisioning work now
out_dir = "out/investigate"

# %% [markdown]
# # Incident investigation
#
# What happened to the app across Fly.io and Supabase, in order, and the root
# cause with the evidence for it. Run by `vyxops investigate`; parameters above.

# %%
from vyxops import nbtools
from vyxops.analysis.investigate import investigate
from vyxops.views.plot import plot_timeline
from vyxops.views.postmortem import write_postmortem
from vyxops.act.probe import probe_and_investigate
from vyxops.fetch.session import open_session

nbtools.setup()
kw = {"since": since, "until": until, "machine_id": machine_id, "stuck_after_minutes": stuck_after_minutes,
      "contract": contract, "tz": tz}
with open_session(target, scenario=scenario) as session:
    probed = probe_and_investigate(session, app, **kw) if probe else None
    inv = probed.investigation if probed else investigate(session, app, **kw)
paths = inv.write(out_dir)
paths["postmortem"] = write_postmortem(inv, out_dir, tz=tz)
nbtools.show_header(inv, tz)
nbtools.show_probe(probed)

# %% [markdown]
# ## Summary

# %%
nbtools.show_summary(inv, tz)
nbtools.show_incomplete(inv.gaps, tz)

# %% [markdown]
# ## Findings

# %%
nbtools.show_findings(inv, tz)

# %% [markdown]
# ## Recommended fixes

# %%
nbtools.show_fixes(inv, target, scenario)

# %% [markdown]
# ## Incident timeline
# Machines and DB rows as lanes of state; releases, secret changes and function invocations marked.

# %%
incident = inv.incident_timeline()
shown = incident if len(incident) else inv.timeline
roles = inv.evidence.contract.status.role  # the team's status words, coloured by what they mean
nbtools.show_figure(plot_timeline(shown, title=f"{app} — {inv.evidence.target}", roles=roles))
nbtools.show_timeline(incident, tz, note="" if len(incident) else "No incident in the window: the full timeline follows.")

# %% [markdown]
# ## Full timeline

# %%
nbtools.show_timeline(inv.timeline, tz)
