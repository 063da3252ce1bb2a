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
fixes = []  # only these fix codes (empty: whatever the findings call for)
strategy = "pin"  # pin | pin-digest | latest
dry_run = True  # True changes nothing
confirm = ""  # must be the app's name to apply
stuck_after_minutes = 10.0
tz = "UTC"  # time zone the report shows times in (an IANA name)
out_dir = "out/remediate"
lock_token = ""  # set by `vyxops remediate --apply`, which holds the app's lock for this run

# %% [markdown]
# # Remediation
#
# Investigate the app, plan the fixes its findings call for, and — only with
# `dry_run=False` and `confirm` set to the app's name — apply them. Each action
# re-checks what it read before it acts, so a plan applied twice changes nothing
# the second time; each platform write is logged (intent, then outcome) in the audit
# log, and a run that was interrupted is settled by the next one. Run by
# `vyxops remediate`; parameters above.

# %%
from vyxops.act import fixes as fx
from vyxops import nbtools
from vyxops.act.fixes.commands import remediate_command
from vyxops.analysis.investigate import investigate
from vyxops.nbtools import remediation as views
from vyxops.fetch.session import open_session

nbtools.setup()
fix_codes = list(fixes or [])
apply_command = remediate_command(app, out_dir=out_dir, target=target, scenario=scenario, fixes=fix_codes,
                                  strategy=strategy, stuck_after_minutes=stuck_after_minutes)

# %%
with open_session(target, scenario=scenario) as session:
    inv = investigate(session, app, contract=contract, stuck_after_minutes=stuck_after_minutes, tz=tz)
    plan = fx.plan_fixes(inv, fixes=fix_codes or None, strategy=strategy, project_ref=session.project_ref)
    plan.write(out_dir, dry_run=dry_run)
    result = fx.apply_plan(session, plan, dry_run=dry_run, confirm=confirm or None, app=app,
                           lock_token=lock_token or None, out_dir=None if dry_run else out_dir)

# %% [markdown]
# ## Findings in
# What the investigation found before anything was changed.

# %%
views.show_investigation(inv)

# %% [markdown]
# ## The plan
# One row per action, in the order they are applied, with what each will check first,
# then what a person could type instead and where to look in the dashboards.

# %%
views.show_plan(plan, dry_run=dry_run)

# %% [markdown]
# ## What was applied

# %%
views.show_result(result, apply_command=apply_command)

# %% [markdown]
# ## Verification
# A canary provisioning through the real path: the function, the machine, the DB row.

# %%
views.show_verification(result)

# %% [markdown]
# ## Audit log

# %%
views.show_audit(result)
