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
apps = []  # app names; empty with all_apps set, every app of the org
all_apps = False
fail_on = "critical"  # critical | warning
stuck_after_minutes = 10.0
tz = "UTC"  # time zone the report shows times in (an IANA name)
probe = False  # probe (a canary, logged and cleaned up) each app whose verdict is inconclusive
out_dir = "out/audit"

# %% [markdown]
# # Audit
#
# Each app investigated over the last 24 hours; the worst severity decides whether
# the scheduled run fails (`--fail-on`).

# %%
from vyxops import nbtools
from vyxops.analysis.audit import audit_or_error
from vyxops.act.probe import probe_inconclusive
from vyxops.fetch.session import open_session

nbtools.setup()
with open_session(target, scenario=scenario) as session:
    # A platform that stops the whole audit is the audit's error, not this cell's: audit.json and this report
    # are still written, and the CLI exits 3 (vyxops.analysis.audit.audit_or_error).
    audit = audit_or_error(
        session, [] if all_apps else apps, contract=contract, stuck_after_minutes=stuck_after_minutes, tz=tz
    )
    kw = {"contract": audit.contract, "stuck_after_minutes": stuck_after_minutes}  # the audit's one pipeline
    probed = probe_inconclusive(session, audit, **kw) if probe and audit.error is None else {}
path = audit.write(out_dir, fail_on)
nbtools.show_html(nbtools.table(audit.frame()))  # left-aligned, no index, blank where nothing

# %% [markdown]
# ## Per app

# %%
if audit.error is not None:
    nbtools.md("## The audit could not run")
    nbtools.show_error(audit.error)
for app, err in audit.errors.items():
    nbtools.heading(app)
    nbtools.show_error(err.error)
for app, inv in audit.investigations.items():
    nbtools.heading(app)
    nbtools.show_header(inv, tz)
    nbtools.show_probe(probed.get(app))
    nbtools.show_summary(inv, tz)
    nbtools.show_incomplete(inv.gaps, tz)
    nbtools.show_findings(inv, tz)
