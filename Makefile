# DySan on the wearable. Two commands matter on a fresh machine:
#   make demo   set up, then run the main job on the embedded (synthetic) default
#   make test   set up, then run every test
# Set-up is idempotent: a virtualenv in .venv with the pinned Python set (requirements.lock) and the
# Debian packages the firmware needs (tools/install-sysdeps.sh). Both are quick when already done.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
VPY    := $(VENV)/bin/python
DYSAN  := $(VENV)/bin/dysan
STAMP  := $(VENV)/.installed
SYSSTAMP := $(VENV)/.sysdeps
DEMO_DIR ?= out/demo
PYTEST_ARGS ?=

.PHONY: all setup sysdeps demo test lint codegen firmware firmware-xiao bench bench-firmware fuzz clean help

all: help

help:
	@echo "make demo            set up and run the whole chain on the embedded synthetic default"
	@echo "make test            set up and run every test"
	@echo "make firmware        build the host and emulated (QEMU Cortex-M4F) firmware (+ the XIAO image, below)"
	@echo "make firmware-xiao   build the XIAO nRF52840 Sense image from ../shared/vendor, check its memory map"
	@echo "make bench           heavy benchmarks (full grids on ../shared data)"
	@echo "make bench-firmware  instruction counts, duty cycle, flash/RAM of the firmware in QEMU"
	@echo "make fuzz            long fuzzing runs of the C and Python frame parsers"

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "error: python3 not found"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
	  || { echo "error: $(PYTHON) is not Python 3.11 (the pinned set needs 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade "pip>=24"
	$(VPY) -m pip install --quiet -r requirements.lock
	$(VPY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(SYSSTAMP): tools/install-sysdeps.sh | $(STAMP)
	bash tools/install-sysdeps.sh
	@touch $@

setup: $(STAMP) $(SYSSTAMP)

sysdeps: $(SYSSTAMP)

demo: setup
	$(DYSAN) demo --out $(DEMO_DIR)

test: setup
	$(VPY) -m ruff check host tests tools
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VPY) -m ruff check host tests tools

codegen: setup
	$(DYSAN) codegen

# The XIAO nRF52840 Sense image needs the board's Arduino core, in ../shared/vendor (firmware/xiao.mk).
XIAO_VENDOR := ../shared/vendor/xiao-nrf52840
XIAO_TARBALL = $(abspath $(XIAO_VENDOR))/seeed-nrf52-xiao.tar.xz

firmware: setup
	$(MAKE) -C firmware all
	@if [ -d $(XIAO_VENDOR) ]; then $(MAKE) -C firmware xiao XIAO_TARBALL=$(XIAO_TARBALL); \
	 else echo "note: $(XIAO_VENDOR) absent: the XIAO image is not built (make firmware-xiao)"; fi

firmware-xiao: setup
	$(MAKE) -C firmware qemu
	$(MAKE) -C firmware xiao XIAO_TARBALL=$(XIAO_TARBALL)

bench: setup
	$(DYSAN) bench --out out/bench

bench-firmware: setup
	$(DYSAN) bench-firmware --out out/bench-firmware

fuzz: setup
	$(MAKE) -C firmware fuzz
	$(VPY) tools/fuzz_protocol.py --runs 1000000

clean:
	rm -rf out build firmware/build .pytest_cache .ruff_cache
