PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev,parity]'
	touch $(STAMP)

demo: $(STAMP)
	@echo "== losskit explain: a tutorial's class-weighted cross entropy, by hand and checked against torch"
	$(BIN)/losskit explain cross_entropy --input '[[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]' \
		--target '[0, 1, 0]' --set 'weight=[1, 2]'
	@echo "== losskit list"
	$(BIN)/losskit list
	@echo "== losskit plot: Figure 1 of the focal loss paper, with the gradient"
	@mkdir -p out
	$(BIN)/losskit plot sigmoid_focal_loss --set gamma=0,0.5,1,2,5 --set alpha=null --grad \
		--out out/focal_loss.png
	@echo "== every loss on its worked example, losskit beside torch"
	$(BIN)/python -m losskit.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# The documentation site: `make docs` builds site/ (strict), `make docs-check` opens every
# page in headless Chromium. MathJax is vendored from npm so the site works offline.
DOCS_STAMP := $(VENV)/.docs-installed
MATHJAX_VERSION := 3.2.2
MATHJAX := build/vendor/mathjax-$(MATHJAX_VERSION)/tex-svg-full.js

.PHONY: docs docs-check

$(DOCS_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev,docs]'
	touch $(DOCS_STAMP)

$(MATHJAX):
	rm -rf $(dir $(MATHJAX)) && mkdir -p $(dir $(MATHJAX))
	cd $(dir $(MATHJAX)) && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null \
		&& tar -xzf mathjax-$(MATHJAX_VERSION).tgz package/es5/tex-svg-full.js package/LICENSE \
		&& mv package/es5/tex-svg-full.js package/LICENSE . && rm -rf package mathjax-*.tgz

# The two variables silence Material's banners about MkDocs 2.0 and its own end of life.
docs: $(DOCS_STAMP) $(MATHJAX)
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 LOSSKIT_MATHJAX=$(MATHJAX) MPLBACKEND=Agg \
		$(BIN)/mkdocs build --strict --clean

docs-check: docs
	command -v chromium >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python docs/_scripts/check_site.py site

# Every specialization of every Triton kernel compiled for sm_90a and sm_80 (no GPU needed;
# `make test` compiles the benchmarks' hot set only). Cached in build/; tables in
# benchmarks/results/kernel_resources.{md,json}.
.PHONY: compile-check roofline

compile-check: $(STAMP)
	env -u TRITON_INTERPRET $(BIN)/python -m benchmarks.compile_check --set all

# The roofline model of the GPU benchmarks' workloads (table in benchmarks/README.md).
roofline: $(STAMP)
	$(BIN)/python -m benchmarks.roofline
