# Two commands do all set-up from a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= runs/demo

.PHONY: venv test lint demo bench bench-deps browser-deps clean-demo

# The CPU torch wheel is installed first and pinned, so nothing can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) browser-deps
	$(BIN)/ruff check img2sdf tests benchmarks
	$(PY) -m pytest -q

# The web demo's browser test drives Debian's Chromium (never a browser download of playwright's own).
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

lint: $(STAMP)
	$(BIN)/ruff check img2sdf tests benchmarks

demo: $(STAMP)
	$(BIN)/img2sdf prepare $(DEMO)/data --source synthetic --n 32 --workers 2
	$(BIN)/img2sdf preview $(DEMO)/data -o $(DEMO)/data/preview.png
	@echo "demo: contact sheet at $(DEMO)/data/preview.png"

# Benchmarks compare against the paper's own tools (mesh-to-sdf, pyrender on OSMesa) in the same run.
bench-deps: $(STAMP)
	dpkg -s libosmesa6 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq libosmesa6)
	$(PY) -m pip install --quiet --no-deps -r benchmarks/requirements.txt

bench: bench-deps
	for b in benchmarks/bench_*.py; do PYOPENGL_PLATFORM=osmesa $(PY) $$b || exit 1; done

clean-demo:
	rm -rf $(DEMO)
