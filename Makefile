# Two commands do all set-up from a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= runs/demo

.PHONY: venv test lint demo bench clean-demo

# The CPU torch wheel is installed first and pinned, so nothing can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check img2sdf tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check img2sdf tests benchmarks

demo: $(STAMP)
	$(BIN)/img2sdf prepare $(DEMO)/data --source synthetic --n 32 --workers 2
	$(BIN)/img2sdf preview $(DEMO)/data -o $(DEMO)/data/preview.png
	@echo "demo: contact sheet at $(DEMO)/data/preview.png"

clean-demo:
	rm -rf $(DEMO)
