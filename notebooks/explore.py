# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
target = "sandbox"  # sandbox | live | bundle:PATH
scenario = None
app = None  # None: the first app of the org

# %% [markdown]
# # Explore
#
# Ad hoc look at one app: pick it, pick a window, filter the timeline by machine.
# Every frame is in `ev` (e.g. `ev.machines`, `ev.function_logs`) for your own pandas.

# %%
from vyxops import nbtools
from vyxops.explore import Explorer
from vyxops.session import open_session

nbtools.setup()
session = open_session(target, scenario=scenario)
explorer = Explorer(session, app)
explorer.widget()

# %%
ev = explorer.evidence
explorer.timeline.tail(20)
