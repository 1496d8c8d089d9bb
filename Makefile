# music-emergence-claims: two commands on a fresh machine (python3, pip and make only).
#   make replicate   run the claims at the ci tier on the embedded corpora, print the report path
#   make test        run the whole test suite (unit, property and harness tests, and the claims)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TIER   ?= ci
JOBS   ?= 2
ARGS   ?=
export MLFLOW_DISABLE_TELEMETRY = true

.PHONY: replicate test test-server unit bench listen ledger lock clean-cache mlflow-ui help

help:
	@sed -n '1,4p' Makefile

# The install peaks at about 8 GB on disk (a 6.2 GB venv, most of it torch's CUDA libraries, plus
# pip's unpacking); harness/preflight.py checks first, so a full disk is one line, not a pip
# traceback halfway through.
INSTALL_GB ?= 9
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) harness/preflight.py "$(VENV)" "$(INSTALL_GB)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=69,<82"
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) harness/preflight.py --pip-check      # pip check, less the declared --no-deps installs
	touch $@

replicate: $(VENV)/.installed
	$(PY) -m pytest -m claims --tier $(TIER) -n $(JOBS) -p no:cacheprovider $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider $(ARGS)

# PostgreSQL + `mlflow server` on loopback (.ci/tracking-server.sh), the scale-out tests, then a small
# claim subset on 4 workers against the server, checked run by run (bench/scaleout.py; .ci/run calls it).
test-server: $(VENV)/.installed
	$(PY) -m bench.scaleout ci $(if $(ARGS),-- $(ARGS))

unit: $(VENV)/.installed
	$(PY) -m pytest -m "not claims" -p no:cacheprovider $(ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench $(ARGS)

# Listening check of the embedded corpus: example WAVs of every class, a log-mel contact sheet, an
# index and the confound audit's picture (audit.png) in reports/corpus_examples/
# (python -m stimuli.corpus --help).
listen: $(VENV)/.installed
	$(PY) -m stimuli.corpus --out reports/corpus_examples $(ARGS)

# Re-pin requirements.lock from pyproject.toml (needs network access to PyPI).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e ".[dev,pitch,server]"
	.venv-lock/bin/pip install --quiet --no-deps basic-pitch hearbaseline   # no TensorFlow (pyproject.toml, preflight.py)
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .venv-lock

clean-cache:
	rm -rf "$${MEC_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/music-emergence-claims}"

ledger: $(VENV)/.installed
	$(PY) -m harness.ledger --write

mlflow-ui: $(VENV)/.installed
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db
