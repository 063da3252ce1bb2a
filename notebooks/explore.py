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
target = "sandbox"  # sandbox | live | bundle:PATH
scenario = None
contract = None  # the team's pipeline contract file; None: the project's vyxops.toml, else discovered
app = None  # None: the first app of the org
since = None  # window start (UTC), e.g. "2025-10-02 16:00:00"; None: 24 h before until
until = None  # window end (UTC); None: the target's now
page_size = 25  # timeline rows a page

# %% [markdown]
# # Explore
#
# Ad hoc look at one app. Pick the app and a machine, type a window in UTC
# (`2025-10-02 16:18:40.123`; seconds and milliseconds may be left out) and press
# **show window**, filter by kind, and page through the timeline with **prev** / **next**.
# The plot under the table follows the app, the machine and the window.
#
# Every frame is in `ev` (e.g. `ev.machines`, `ev.function_logs`) for your own pandas, and
# `explorer.view(machine_id, kinds)` is a selection as a DataFrame.

# %%
from vyxops import nbtools
from vyxops.views.explore import Explorer
from vyxops.fetch.session import open_session

nbtools.setup()
session = open_session(target, scenario=scenario)
explorer = Explorer(session, app, since=since, until=until, page_size=page_size, contract=contract)
explorer.widget()

# %% [markdown]
# The window's last events, as a table that also shows where widgets do not (a papermill run, an HTML export):

# %%
ev = explorer.evidence
explorer.table(last=20)
