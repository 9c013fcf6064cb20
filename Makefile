# Two commands do all set-up from a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= runs/demo
# The photo pool the demo's DiT trains on (encode --views photo): see the README's ablation for the choice.
DEMO_POOL ?= --jitter-copies 1 --random-views 32

# The bundled model (img2sdf/pretrained/): the paper's 976 training shapes, CPU presets (README for timings).
PRETRAINED ?= runs/pretrained
PRETRAINED_FIT ?=
PRETRAINED_DIT ?= --steps 40000 --set model.d_model=192 --set model.layers=3 --set model.heads=6

.PHONY: venv test lint demo bench bench-deps browser-deps clean-demo pretrained

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
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

lint: $(STAMP)
	$(BIN)/ruff check img2sdf tests benchmarks

# The main job, tiny presets: prepare → encode (renders + photo pool) → fit → train-dit → generate on a
# held-out render and on a photo → eval-gen (photo protocol + known-pose protocol).
# Every step resumes, so an interrupted `make demo` continues. With --n 32 the synthetic catalog numbers
# the 32 training shapes 0-31, then the test shapes (obj_0032 = a table), then the ood ones (obj_0036).
demo: $(STAMP)
	$(BIN)/img2sdf prepare $(DEMO)/data --source synthetic --n 32 --workers 2
	$(BIN)/img2sdf preview $(DEMO)/data -o $(DEMO)/data/preview.png
	@echo "demo: contact sheet at $(DEMO)/data/preview.png"
	$(BIN)/img2sdf encode $(DEMO)/data --views both $(DEMO_POOL)
	$(BIN)/img2sdf fit $(DEMO)/data --out $(DEMO)/decoder --preset tiny --set threads=1 \
		$$(test -f $(DEMO)/decoder/config.json && echo --resume)
	$(BIN)/img2sdf train-dit $(DEMO)/data --decoder $(DEMO)/decoder --out $(DEMO)/dit --preset tiny \
		$$(test -f $(DEMO)/dit/config.json && echo --resume)
	$(BIN)/img2sdf generate $(DEMO)/data/renders/obj_0032/view_0[0-3].png --poses \
		$(DEMO)/data/renders/obj_0032/cameras.json --model $(DEMO)/dit -o $(DEMO)/generated_table.glb \
		--preview $(DEMO)/generated_table.png
	$(BIN)/img2sdf generate $(DEMO)/data/renders/obj_0036/view_05.png --model $(DEMO)/dit \
		-o $(DEMO)/generated_ood_photo.glb --preview $(DEMO)/generated_ood_photo.png
	$(BIN)/img2sdf eval-gen --model $(DEMO)/dit --out $(DEMO)/eval --reconstruct-steps 200
	@echo "demo: report at $(DEMO)/eval/report.html (metrics $(DEMO)/eval/metrics.json)"

# Rebuilds img2sdf/pretrained/ from scratch (hours on a 2-core CPU; every stage resumes when rerun).
pretrained: $(STAMP)
	$(BIN)/img2sdf prepare $(PRETRAINED)/data --source synthetic --n 976 --workers 2
	$(BIN)/img2sdf encode $(PRETRAINED)/data --views both --jitter-copies 0 --random-views 16
	$(BIN)/img2sdf fit $(PRETRAINED)/data --out $(PRETRAINED)/decoder --preset cpu $(PRETRAINED_FIT) \
		--set threads=2 $$(test -f $(PRETRAINED)/decoder/config.json && echo --resume)
	$(BIN)/img2sdf train-dit $(PRETRAINED)/data --decoder $(PRETRAINED)/decoder --out $(PRETRAINED)/dit \
		--preset tiny $(PRETRAINED_DIT) $$(test -f $(PRETRAINED)/dit/config.json && echo --resume)
	$(BIN)/img2sdf eval-gen --model $(PRETRAINED)/dit --out $(PRETRAINED)/eval --protocols photo \
		--splits test --reconstruct-steps 100 --recall-shapes 200
	$(BIN)/img2sdf bundle $(PRETRAINED)/dit --out img2sdf/pretrained --metrics $(PRETRAINED)/eval/metrics.json \
		--note "make pretrained"

# Benchmarks compare against the paper's own tools (mesh-to-sdf, pyrender on OSMesa) in the same run.
bench-deps: $(STAMP)
	dpkg -s libosmesa6 >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6)
	$(PY) -m pip install --quiet --no-deps -r benchmarks/requirements.txt

bench: bench-deps
	for b in benchmarks/bench_*.py; do PYOPENGL_PLATFORM=osmesa $(PY) $$b || exit 1; done

clean-demo:
	rm -rf $(DEMO)
