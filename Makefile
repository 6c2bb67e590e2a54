# yt8m-tfx: `make run-local` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# Python 3.10 is required by TFX 1.16; found on PATH or in pyenv, or set PYTHON310=/path.
PYTHON310 ?= $(shell for p in python3.10 $(HOME)/.pyenv/versions/3.10*/bin/python /root/.pyenv/versions/3.10*/bin/python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { command -v $$p; break; }; done)
export TF_CPP_MIN_LOG_LEVEL ?= 2
FRAME_SAMPLE := build/frame_sample

# Pipeline knobs: make run-local MODEL=MoeModel TRAIN_STEPS=500 DATA_ROOT=/data/yt8m/2018/video
# FRAME=1: frame-level SequenceExamples made from the bundled sample (build/frame_sample).
FRAME ?=
ifeq ($(FRAME),1)
MODEL ?= FrameLevelLogisticModel
DATA_ROOT ?= $(FRAME_SAMPLE)
FRAME_ARGS := --frame_features
RUN_DEPS := $(FRAME_SAMPLE)/.done
else
MODEL ?= LogisticModel
DATA_ROOT ?= data/sample/video
endif
TRAIN_STEPS ?= 300
ARGS ?=

.PHONY: help setup run-local test lint lock clean

help:
	@echo "make run-local   run the TFX pipeline on the bundled real sample (sets up .venv first)"
	@echo "                 MODEL=MoeModel TRAIN_STEPS=500 DATA_ROOT=... ARGS='--batch_size=512'"
	@echo "                 FRAME=1 [MODEL=DbofModel]: frame-level data made from the sample"
	@echo "make test        ruff + pytest (unit and end-to-end pipeline tests)"
	@echo "make setup       create .venv from requirements.lock (idempotent)"
	@echo "make lock        re-resolve requirements.in into requirements.lock with uv"
	@echo "make clean       remove pipeline outputs and pushed models"

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@if [ -z "$(PYTHON310)" ]; then \
		echo "error: Python 3.10 not found (TFX 1.16 needs it): install it (e.g. 'pyenv install 3.10') or pass PYTHON310=/path/to/python3.10" >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON310) -m venv $(VENV)
	@[ -x $(UV) ] || $(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

run-local: setup $(RUN_DEPS)
	$(PY) -m pipeline.run_local --model=$(MODEL) --train_steps=$(TRAIN_STEPS) \
		--data_root=$(DATA_ROOT) $(FRAME_ARGS) $(ARGS)

# Frame-level sample: 20-60 one-second frames per real video of the bundled sample (seeded).
$(FRAME_SAMPLE)/.done: | setup
	@for split in train validate; do \
		$(PY) -m pipeline.make_frame_data --input_pattern="data/sample/video/$$split/*.tfrecord" \
			--output_dir=$(FRAME_SAMPLE)/$$split --min_frames=20 --max_frames=60 || exit 1; done
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q

lock: setup
	$(UV) pip compile --quiet requirements.in --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf pipeline_output serving_model build
