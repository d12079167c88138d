# The two set-up commands of the README: `make demo` and `make test`. Each installs what it needs by itself.
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= train,openvino,onnx,dev
BIN := $(VENV)/bin

.PHONY: demo test lint bench system-deps clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

# Mosquitto (the tests' broker), Chromium + ChromeDriver (the alert page's browser test) and GStreamer's RTSP
# server (the stream tests' IP camera) from Debian's packages.
system-deps:
	@bash scripts/install-system-deps.sh

demo: $(VENV)/.installed system-deps
	$(BIN)/i3dmtn demo

test: $(VENV)/.installed system-deps
	$(BIN)/python -m pytest -q -ra

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(VENV)/.installed
	$(BIN)/i3dmtn bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
