# The README's two commands are `make demo` and `make test`; everything else hangs off them.
# Set-up needs only python3.11 and pip: uv comes from PyPI into .tools/, the project into .venv/.
PYTHON ?= python3.11
VENV   := .venv
UV     := .tools/bin/uv
OUT    ?= out/stub-image

# Two stamps in one venv, each installing only what its command needs: the demo's (the package and the
# sandbox extra) and the tests' (the test extra, which includes the sandbox extra). The tests' depends on
# the demo's, so `make demo` then `make test` adds the test extra, `make test` then `make demo` finds the
# demo's stamp already made, and a second run of either finds its stamp newer than pyproject.toml.
# JupyterLab is in neither: it has its own venv (LAB_VENV, below), so the venv the CLI runs from never
# holds the lab's dependencies (pyproject.toml's test extra says why).
DEMO_STAMP := $(VENV)/.installed-sandbox
TEST_STAMP := $(VENV)/.installed-test
OLD_STAMP  := $(VENV)/.installed
LAB_VENV   := .tools/lab
LAB_STAMP  := $(LAB_VENV)/.installed

SUPABASE_CLI_VERSION := 2.117.0
# The Supabase CLI's stamp; the CLI itself is .tools/supabase-cli/node_modules/.bin/supabase.
SUPABASE_CLI := .tools/supabase-cli/.installed-$(SUPABASE_CLI_VERSION)

.PHONY: setup setup-test setup-lab bytecode demo lint test test-fast bench faults lab clean supabase-cli

# uv goes into a venv made without pip, by python3.11's own pip (`pip --python`): ensurepip, which
# copies pip into every new venv, is most of the cost of this step. A Python without pip falls back
# to the venv's own ensurepip.
$(UV):
	$(PYTHON) -m venv --without-pip .tools
	$(PYTHON) -m pip --python .tools/bin/python install --quiet --disable-pip-version-check uv || \
		{ .tools/bin/python -m ensurepip --default-pip >/dev/null && \
		  .tools/bin/python -m pip install --quiet --disable-pip-version-check uv; }

# The demo's bytecode is written by its own first run (`demo` below), which compiles what the CLI and
# its kernel import and nothing else; compiling the whole venv (--compile-bytecode) would take longer
# than the rest of a fresh clone's set-up. A venv made before the lab moved out (it has $(OLD_STAMP))
# holds JupyterLab and its dependencies, which uv would not remove: it is made again.
$(DEMO_STAMP): pyproject.toml | $(UV)
	@if [ -e $(OLD_STAMP) ]; then echo "$(VENV) holds JupyterLab (it now has its own venv): making $(VENV) again"; \
		rm -rf $(VENV); fi
	test -x $(VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(VENV)/bin/python -e '.[sandbox]'
	touch $@

# The tests start hundreds of processes, each importing what it needs: every file is compiled once here.
$(TEST_STAMP): $(DEMO_STAMP) pyproject.toml
	$(UV) pip install --quiet --python $(VENV)/bin/python --compile-bytecode -e '.[test]'
	touch $@

# JupyterLab's venv: the package (editable, so the lab's kernel imports this checkout) with the sandbox
# and lab extras. `make lab` serves from it, and tests/test_browser_lab.py starts its JupyterLab from it.
$(LAB_STAMP): pyproject.toml | $(UV)
	test -x $(LAB_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(LAB_VENV)
	$(UV) pip install --quiet --python $(LAB_VENV)/bin/python --compile-bytecode -e '.[sandbox,lab]'
	touch $@

# The repository's own modules are imported from source (an editable install), so their
# bytecode is compiled here, as pip does for a wheel: without it every run, and every
# notebook kernel, compiles vyxops again (~0.2 s), since PYTHONDONTWRITEBYTECODE may be set;
# and a sandbox run compiles the simulator, which the CLI's process serves. compileall skips
# what is up to date, so this is a no-op on a second run.
bytecode: $(DEMO_STAMP)
	$(VENV)/bin/python -m compileall -q -x '/notebooks/' vyxops vyxops_sandbox

setup: $(DEMO_STAMP) bytecode
setup-test: $(TEST_STAMP) bytecode
setup-lab: $(LAB_STAMP)

# The users' own Supabase client, pinned, which tests/test_supabase_cli.py drives against a served
# sandbox (it runs offline once installed). npm fetches it once; a second run does nothing. The demo
# does not need it, so without npm this only says so and the tests skip (.ci/run installs npm).
$(SUPABASE_CLI):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --save-exact --prefix .tools/supabase-cli \
			supabase@$(SUPABASE_CLI_VERSION) && touch $@; \
	else \
		echo "npm not found: tests/test_supabase_cli.py will skip (apt-get install npm)"; \
	fi

supabase-cli: $(SUPABASE_CLI)

# PYTHONDONTWRITEBYTECODE is cleared for this run only: it writes the bytecode of what it imports (the
# CLI's and the kernel's, which inherits the environment), so later runs start from it whatever the user sets.
demo: setup  ## investigate the seed incident on the sandbox
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/vyxops investigate --scenario stub-image --app vyx-app --out $(OUT)

# Lint, format and types run first, so a style or type error fails in seconds rather than
# after the whole suite (mypy's configuration, strict over vyxops, is in pyproject.toml).
lint: setup-test  ## ruff, ruff format and mypy strict
	$(VENV)/bin/ruff check vyxops vyxops_sandbox tests bench
	$(VENV)/bin/ruff format --check vyxops vyxops_sandbox tests bench
	$(VENV)/bin/mypy

# The tiers (tests/tiers.py) run unit, then sandbox, then e2e, so the first failure comes early.
test: setup-test setup-lab supabase-cli lint  ## the whole test suite, offline
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# Only the unit tier's files are collected: collecting the whole suite to deselect it costs more than the tier.
test-fast: lint  ## lint and the unit tier: no sandbox, no kernel, no subprocess
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -m unit $$($(VENV)/bin/python tests/tiers.py unit)

bench: setup  ## speed and memory figures, as ratios measured in one run
	$(VENV)/bin/python bench/run.py

# The hostile slice (issue 19) runs the CLI through a loopback proxy and kills kernels; it prints its
# class | tried | held | wrong table and fails the target if a case is wrong, after the others have run.
faults: setup-test  ## the whole fault matrix: every fault, kills, concurrent applies, wrong shapes, hostile text, bombs
	$(VENV)/bin/python tests/test_fault_matrix_investigate.py
	$(VENV)/bin/python tests/test_fault_matrix.py
	$(VENV)/bin/python tests/test_fault_matrix_hostile.py; status=$$?; \
	VYXOPS_FAULT_MATRIX=full $(VENV)/bin/python -m pytest -q -p no:cacheprovider \
		tests/test_fixes_transactions.py tests/test_fixes_lock.py tests/test_sandbox_state.py && exit $$status

# As root (a container's shell often is), Jupyter exits at once unless --allow-root is given (jupyter_server's
# serverapp.py: euid 0 without allow_root logs "Running as root is not recommended. Use --allow-root to bypass."
# and exits 1); it is passed only then. The lab listens on loopback only: it runs code.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup-lab  ## JupyterLab for ad hoc exploration (its own venv, .tools/lab)
	$(LAB_VENV)/bin/jupyter lab --ip 127.0.0.1 $(LAB_ROOT) notebooks/explore.ipynb

clean:
	rm -rf $(VENV) .tools out .vyxops
