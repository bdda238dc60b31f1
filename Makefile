# Loudou: `make run` serves the demo, `make test` runs every test. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := loudou/web/static/vendor

.PHONY: run test lint format check vendor messages clean

run: $(VENV)/.runtime $(VENDOR)/.stamp
	@mkdir -p var/static
	$(BIN)/loudou migrate --noinput
	$(BIN)/loudou demo
	$(BIN)/loudou serve

# Quality checks, then every test on SQLite and on a throwaway PostgreSQL, in Chromium.
# `make test ARGS="-k board"` passes arguments to pytest; see tests/runner.py for the knobs.
test: $(VENV)/.test $(VENDOR)/.stamp
	$(BIN)/python -m tests.runner $(ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	LOUDOU_DATABASE_URL=sqlite:///:memory: $(BIN)/loudou check
	LOUDOU_DATABASE_URL=sqlite:///:memory: $(BIN)/loudou makemigrations --check --dry-run

format: $(VENV)/.test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: $(VENV)/.runtime
	cd loudou && ../$(BIN)/loudou makemessages -l zh_Hans --no-obsolete && ../$(BIN)/loudou compilemessages -l zh_Hans

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Copy only the built files the pages use; the app serves them itself (no CDN).
$(VENDOR)/.stamp: node_modules/.stamp
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/bootstrap $(VENDOR)/bootstrap-icons $(VENDOR)/htmx $(VENDOR)/sortablejs $(VENDOR)/echarts
	cp -r node_modules/bootstrap/dist/css node_modules/bootstrap/dist/js $(VENDOR)/bootstrap/
	cp -r node_modules/bootstrap-icons/font $(VENDOR)/bootstrap-icons/
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx/
	cp node_modules/sortablejs/Sortable.min.js $(VENDOR)/sortablejs/
	cp node_modules/echarts/dist/echarts.min.js $(VENDOR)/echarts/
	touch $@

vendor: $(VENDOR)/.stamp

clean:
	rm -rf $(VENV) node_modules $(VENDOR) var
