# PyScaler's two commands: `make run` and `make test`. Both install what they
# need on a fresh Debian machine (run as root, or with sudo).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run load test system-deps venv static-deps migrate demo clean check constraints

system-deps:
	bash scripts/install-system-deps.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

venv: $(VENV)/.installed

# Re-pin every indirect dependency after changing requirements*.txt.
constraints: venv
	{ grep '^#' constraints.txt; $(PY) -m pip freeze --exclude-editable | LC_ALL=C sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# The console's browser libraries (uPlot), exactly as package-lock.json pins them.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static-deps: node_modules/.installed

# The tests marked `dbbackends` (database-touching tests whose behaviour may
# differ between databases: locks, constraints, admin) run again on PostgreSQL
# and MariaDB. pytest-django creates and drops test_<name>; the name carries
# the shell's pid so concurrent runs on one machine never share a database.
# Exit status 5 is "no test selected" (PYTEST_ARGS picked none of them).
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/pyscaler_$$$$
MARIADB_TEST_URL ?= mysql://root@127.0.0.1:3306/pyscaler_$$$$

# lint-imports checks the import contracts of .importlinter (which part may
# import which) before any test runs; audit_dependencies.py checks the pinned
# set for known vulnerabilities (it fails on one, and only warns when the
# advisory database cannot be reached).
test: system-deps venv static-deps
	$(VENV)/bin/lint-imports
	$(PY) scripts/audit_dependencies.py
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	DATABASE_URL=$(PG_TEST_URL) $(VENV)/bin/pytest -m dbbackends $(PYTEST_ARGS) || [ $$? -eq 5 ]
	DATABASE_URL=$(MARIADB_TEST_URL) $(VENV)/bin/pytest -m dbbackends $(PYTEST_ARGS) || [ $$? -eq 5 ]

run: system-deps venv static-deps
	$(PY) scripts/run.py

# Load for the autoscaling demo (make run): busy loops on every core for LOAD_S seconds (default 240).
load: venv
	$(PY) scripts/load.py

check: venv
	$(PY) manage.py check

clean:
	rm -rf $(VENV) var staticfiles
