# twin: `make demo` runs the whole pipeline on the bundled sample; `make test` runs the tests.
# Both set up .venv first (once; later runs reuse it).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.twin-installed
DEMO   := demo-workspace
# A short demo run: 2 epochs of the sample (212 steps with the knowledge-base lessons) at a
# higher learning rate than the default 2e-4 of a full run, so the twin's style shows after
# minutes on a laptop CPU. Epochs, not steps: a fixed 160 steps gave the chat examples fewer
# passes as lessons were added (perplexity 4.61 against 3.57 at 2 epochs: BENCHMARKS.md,
# session 11). (80 steps took half the time, but a classifier told its replies from the
# person's 67% of the time against 56% after 160: BENCHMARKS.md, "Fidelity".)
DEMO_EPOCHS ?= 2
DEMO_LR    ?= 1e-3
PORT   ?= 5000

.PHONY: setup demo test clean-demo

setup: $(STAMP)

# torch is pinned in constraints.txt to the release whose CPU build installs from local disk on
# CPU-only machines; an unpinned torch would pull several GB of CUDA build.
# llama-cpp-python compiles from source the first time (~9 minutes on 2 cores).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc 2>/dev/null || echo 2) \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	$(BIN)/twin --version
	@# The chat page's browser test drives Debian's headless Chromium (never a downloaded browser).
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium + chromium-driver for the browser test (apt-get)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	      || echo "warning: could not install chromium; tests/test_web_page.py will fail until it is installed" >&2; \
	  else \
	    echo "note: tests/test_web_page.py needs chromium + chromium-driver: apt-get install -y chromium chromium-driver" >&2; \
	  fi; \
	fi
	touch $@

# The demo's stages are file targets: a second `make demo` reuses what is already built and
# only serves and asks again (re-installing does not retrain: the set-up is an order-only
# prerequisite). `make clean-demo` starts it over.
$(DEMO)/data/train.jsonl: samples/imessage/messages.csv samples/facts.toml | $(STAMP)
	$(BIN)/twin process samples/imessage/messages.csv --facts samples/facts.toml --workspace $(DEMO)

$(DEMO)/adapter/adapter_config.json: $(DEMO)/data/train.jsonl
	$(BIN)/twin train --workspace $(DEMO) --epochs $(DEMO_EPOCHS) --lr $(DEMO_LR)

# twin.toml too: after `twin eval --workspace demo-workspace` has fitted the decoding defaults
# ([sampling]), the next `make demo` exports again so that the GGUF carries them.
$(DEMO)/model/twin-Q8_0.gguf: $(DEMO)/adapter/adapter_config.json $(DEMO)/twin.toml
	$(BIN)/twin export --workspace $(DEMO) --quant Q8_0

demo: $(DEMO)/model/twin-Q8_0.gguf | $(STAMP)
	PORT=$(PORT) bash scripts/demo_serve.sh $(DEMO)

test: $(STAMP)
	$(BIN)/python -m pytest

clean-demo:
	rm -rf $(DEMO)
