# Two commands on a fresh machine: `make run` and `make test`.
# Each creates .venv when missing, installs torch==2.13.0 first (the CPU wheel offered locally),
# then the project, and installs Qt's Debian runtime libraries with apt-get when missing (as root).
# A second call is quick: stamps skip work that is already done.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
TORCH := torch==2.13.0
STAMP := $(VENV)/.stamp-install
DEV_STAMP := $(VENV)/.stamp-dev
SYS_STAMP := $(VENV)/.stamp-sysdeps
ARGS ?=

QT_DEBS := libgl1 libegl1 libfontconfig1 libglib2.0-0 libdbus-1-3 libxkbcommon0 \
	libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
	libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 \
	libxcb-xkb1 xvfb xauth
# h5dump (HDF5 1.10), for the test that our HDF5 exports open in HDF5 1.x readers.
TEST_DEBS := hdf5-tools

.PHONY: run test lint lint-imports bench model demo screenshot screenshots clean sysdeps install dev

run: $(STAMP) $(SYS_STAMP)
	$(PY) -m csknet_studio $(ARGS)

test: $(DEV_STAMP) $(SYS_STAMP)
	$(PY) -m ruff check .
	$(MAKE) --no-print-directory lint-imports
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(PY) -m pytest $(ARGS)

lint: $(DEV_STAMP)
	$(PY) -m ruff check .

# The layer contracts of pyproject's [tool.importlinter]. import-linter finds modules by walking the
# root package's folder, but pyproject maps csknet_studio.core / .ui / .resources to top-level folders,
# so a tree of links under .venv lays the package out as installed and lint-imports reads that.
IMPORT_TREE := $(VENV)/import-tree
lint-imports: $(DEV_STAMP)
	@rm -rf $(IMPORT_TREE) && mkdir -p $(IMPORT_TREE)/csknet_studio
	@for f in csknet_studio/*; do ln -s "$(CURDIR)/$$f" $(IMPORT_TREE)/csknet_studio/; done
	@for d in core ui resources; do ln -s "$(CURDIR)/$$d" $(IMPORT_TREE)/csknet_studio/$$d; done
	cd $(IMPORT_TREE) && $(CURDIR)/$(VENV)/bin/lint-imports $(CURDIR)/pyproject.toml

install: $(STAMP)
dev: $(DEV_STAMP)
sysdeps: $(SYS_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install --upgrade pip "setuptools>=68" wheel
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install $(TORCH)
	$(PIP) install --no-build-isolation -e .
	touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install --no-build-isolation -e ".[dev]"
	touch $@

# Qt's runtime libraries (offscreen + a real X window) and h5dump. Installed only when missing and we are root.
$(SYS_STAMP): | $(VENV)/bin/python
	@missing=""; for p in $(QT_DEBS) $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "warning: missing Debian packages (run as root to install):$$missing"; fi
	touch $@

# Train the bundled default checkpoint (docs/model.md "Default model"): render the
# training / validation scenes and train with the CLI. Then
# `scripts/default_model_report.py --bundle` scores runs/default_model/best.pt on the held-out clip
# and writes resources/default_model.pt (metrics and training time inside).
model: $(STAMP)
	$(PY) scripts/default_model_data.py --out build/default_model
	@mkdir -p runs; start=$$(date +%s); \
	$(PY) -m csknet_studio train --config configs/default_model.toml && \
	echo "wall_s=$$(( $$(date +%s) - start ))" > runs/default_model.time
	$(PY) scripts/default_model_report.py --bundle --train-log runs/default_model.time

bench: $(STAMP)
	for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

demo: $(STAMP)
	$(PY) -m csknet_studio demo --out demo_sequence

screenshot: $(STAMP) $(SYS_STAMP)
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m csknet_studio --screenshot docs/screenshot.png

# Every panel and dialog, dark and light, on a 1366x768 screen (docs/images/panels/), and the
# README's picture (docs/screenshot.png) as the dark window opens on that screen.
screenshots: $(STAMP) $(SYS_STAMP)
	xvfb-run -a -s "-screen 0 1366x768x24" $(PY) docs/make_screenshots.py --out docs/images/panels \
		--size 1366x768 --readme docs/screenshot.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
