# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_data

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: env demo test test-services bench clean

env: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mea-pipeline demo --out $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q

# A real server, deployments, workers on PostgreSQL, Dask and the UI in Chromium (a few minutes);
# tests whose system packages are missing skip with the reason (.ci/run installs them).
test-services: $(STAMP)
	$(PY) -m pytest -q -m "services or browser" tests/services tests/reliability

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(DEMO_DIR) .prefect
