# speechbrain-textsep: `make quickstart` trains and runs a text-queried
# separator offline on SynthMUSIC; `make test` runs the test suite. Both
# create the virtual environment and install everything first;
# `make test-fast` runs the unit tests only.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data/SynthMUSIC
QUICKSTART ?= results/quickstart
export HF_HUB_OFFLINE ?= 1

.PHONY: install system-deps quickstart test test-fast lint benchmark clean

# Debian packages: ffmpeg (museval, BSS Eval v4, imports stempeg, which
# calls the ffmpeg binaries), the PortAudio headers (the `synthmusic`
# extra: tinysoundfont requires pyaudio, built from source against them),
# and headless Chromium with its driver (the browser tests of `textsep demo`).
system-deps:
	@missing=""; \
	command -v ffprobe >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	[ -f /usr/include/portaudio.h ] || missing="$$missing portaudio19-dev"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Please install:$$missing (e.g. 'sudo apt-get install$$missing')"; \
	    exit 1; \
	  fi; \
	fi

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,synthmusic,demo]"
	touch $@

install: system-deps $(VENV)/.installed

quickstart: install
	@start=$$(date +%s); \
	$(PY) recipes/SynthMUSIC/separation/train.py \
	  recipes/SynthMUSIC/separation/hparams/clipsep_text_small.yaml \
	  --data_folder $(DATA) --output_folder $(QUICKSTART) && \
	$(PY) recipes/SynthMUSIC/separation/separate_example.py \
	  --model $(QUICKSTART)/model --data_folder $(DATA) --out $(QUICKSTART)/example && \
	echo "quickstart finished in $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s"

test: install
	$(PY) -m pytest -q

# The unit tests and doctests only (under 2 minutes).
test-fast: install
	$(PY) -m pytest -q -m unit

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

benchmark: install
	$(PY) benchmarks/clipsep_speed.py
	$(PY) benchmarks/separate_long.py
	$(PY) benchmarks/clapsep_speed.py

clean:
	rm -rf $(VENV) results data
