# One-command set-up: every target creates .venv on first use.
# GPU users: `make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" venv` (or any torch>=2.4).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv quickstart quickstart-csr notebooks test test-slow lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,csr,logging,analysis,serving]"
	touch $(STAMP)

## The README's main job: zero-shot eval -> fine-tune SPLADE-tiny -> eval, prints the metrics table.
quickstart: $(STAMP)
	$(PY) -m splade_lightning fit --config configs/splade/quickstart.yaml

## CSR: sparsify the bundled all-MiniLM-L6-v2 with a TopK sparse autoencoder (~2.5 min on 2 CPU cores).
quickstart-csr: $(STAMP)
	$(PY) -m splade_lightning fit --config configs/csr/quickstart.yaml

## Run the analysis notebooks; executed copies and PNG plots go to notebooks/output/ (git-ignored).
notebooks: $(STAMP)
	mkdir -p notebooks/output
	$(VENV)/bin/jupyter execute notebooks/*.ipynb --output='output/{notebook_name}'

## The default test suite (CPU, offline, ~minutes). CI runs this.
test: $(STAMP)
	$(PY) -m pytest -q

## Opt-in slow tests (real SPLADE-tiny, real data).
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(PY) -m ruff check splade_lightning tests benchmarks experiments

clean:
	rm -rf $(VENV) runs lightning_logs
