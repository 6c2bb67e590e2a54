# yt8m-tfx: `make run-local` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The lock's TFX wheels (ml-metadata, TFDV) need glibc >= 2.39 (manylinux_2_39) or macOS:
# there the targets run on this host. Elsewhere each target below runs in a container of the
# pipeline image (`make image`), with this work tree mounted (docs/platforms.md).
GLIBC_NEEDED := 2.39
GLIBC := $(shell getconf GNU_LIBC_VERSION 2>/dev/null | cut -d' ' -f2)
NATIVE ?= $(shell { [ "$$(uname -s)" = Darwin ] || printf '%s\n%s\n' $(GLIBC_NEEDED) "$(GLIBC)" \
	| sort -V -C; } && echo 1)
# In the image (Dockerfile) the venv is its own: the lock and the project are installed.
IN_IMAGE := $(YT8M_TFX_VENV)
VENV := $(or $(YT8M_TFX_VENV),.venv)
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.in)
STAMP := $(VENV)/.installed
# The lock's Python (docs/platforms.md): found on PATH or in pyenv, or set PYTHON=/path.
PYTHON_VERSION := 3.13
PYTHON ?= $(shell for p in python$(PYTHON_VERSION) $(HOME)/.pyenv/versions/$(PYTHON_VERSION)*/bin/python; do \
	command -v $$p >/dev/null 2>&1 && { command -v $$p; break; }; done)
CONTAINER := tools/container.sh
# Takes TensorFlow's start-up notices out of stderr (none with VERBOSE=1).
QUIET := tools/quiet.sh
# Quiet by default: no TensorFlow C++ notices or dependencies' deprecation warnings.
# VERBOSE=1 (or YT8M_TFX_VERBOSE=1 in the environment) shows them.
VERBOSE ?= $(YT8M_TFX_VERBOSE)
export YT8M_TFX_VERBOSE := $(VERBOSE)
export TF_CPP_MIN_LOG_LEVEL ?= $(if $(VERBOSE),0,2)
export PYTHONWARNINGS ?= $(if $(VERBOSE),default,ignore::DeprecationWarning$(,)ignore::FutureWarning)
, := ,
FRAME_SAMPLE := build/frame_sample
SEGMENT_SAMPLE := build/segment_sample

# Pipeline knobs: make run-local MODEL=MoeModel TRAIN_STEPS=500 DATA_ROOT=/data/yt8m/2018/video
# FRAME=1: frame-level SequenceExamples made from the bundled sample (build/frame_sample).
# SEGMENTS=1: the 2019 segment task on a segment-rated fixture of the bundled real frames
# (build/segment_sample, data_tools/make_segment_data.py).
FRAME ?=
SEGMENTS ?=
ifeq ($(SEGMENTS),1)
MODEL ?= FrameLevelLogisticModel
DATA_ROOT ?= $(SEGMENT_SAMPLE)
FRAME_ARGS := --segment_labels
RUN_DEPS := $(SEGMENT_SAMPLE)/.done
# A task of its own: its runs, checkpoints and served models apart from the video-level ones.
MODEL_BASE ?= serving_model_segments
RUN_ARGS := --pipeline_root=pipeline_output/segments --serving_model_dir=$(MODEL_BASE)
else ifeq ($(FRAME),1)
MODEL ?= FrameLevelLogisticModel
DATA_ROOT ?= $(FRAME_SAMPLE)
FRAME_ARGS := --frame_features
RUN_DEPS := $(FRAME_SAMPLE)/.done
else
MODEL ?=
DATA_ROOT ?= data/sample/video
endif
TRAIN_STEPS ?=
PRESET ?=
ARGS ?=

# Serving knobs (TF Serving's defaults): make serve MODEL_NAME=yt8m PORT=8501
MODEL_NAME ?= yt8m
PORT ?= 8501
MODEL_BASE ?= serving_model
# TF Serving of the TensorFlow minor the lock pins (the SavedModel's producer).
TF_SERVING_IMAGE ?= tensorflow/serving:$(shell sed -n 's/^tensorflow==\([0-9]*\.[0-9]*\).*/\1/p' requirements.lock).0
INPUT ?= $(if $(filter 1,$(SEGMENTS)),$(SEGMENT_SAMPLE)/validate,data/sample/video/validate)/*.tfrecord
OUTPUT ?= $(if $(filter 1,$(SEGMENTS)),segment_predictions.csv,predictions.csv)

# Kubeflow knobs: make compile-kfp IMAGE=… PIPELINE_ROOT=gs://… KFP_DATA_ROOT=gs://…
# The image's name and tag: this project's name and version, written once in pyproject.toml.
IMAGE ?= $(shell sed -n 's/^name = "\(.*\)"/\1/p' pyproject.toml):$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PIPELINE_ROOT ?= gs://YOUR_BUCKET/yt8m
KFP_DATA_ROOT ?= $(PIPELINE_ROOT)/data/2018/video
KFP_PACKAGE ?= build/kfp/pipeline.yaml
KFP_HOST ?=
EXPERIMENT ?= yt8m

.PHONY: FORCE help setup run-local test test-fast lint lock clean serve predict check-serving infer \
	evaluate \
	bench bench-scale bench-evaluator bench-workers parity parity-segments image \
	validate-data download \
	compile-kfp submit-kfp serve-local tensorboard

help:
	@echo "make run-local   run the TFX pipeline on the bundled real sample (sets up first)"
	@echo "                 MODEL=MoeModel TRAIN_STEPS=500 DATA_ROOT=... ARGS='--batch_size=512'"
	@echo "                 FRAME=1 [MODEL=DbofModel]: frame-level data made from the sample"
	@echo "make serve       serve serving_model/ over TF Serving's REST API on 127.0.0.1:8501"
	@echo "                 (tensorflow/serving in Docker if available, else the local server)"
	@echo "make predict     send real videos to the running server and print their top classes"
	@echo "make check-serving  the running server's predictions must equal the pushed SavedModel's"
	@echo "make infer       Kaggle predictions CSV of the latest pushed model:"
	@echo "                 INPUT='data/test/*.tfrecord' OUTPUT=predictions.csv"
	@echo "make evaluate    GAP/mAP/Hit@1/PERR of the latest pushed model on INPUT (labelled)"
	@echo "SEGMENTS=1 make run-local|infer|evaluate  the 2019 segment task (segment MAP@K,"
	@echo "                 Class,Segments CSV) on a segment-rated fixture of the real frames"
	@echo "make image       build the pipeline image (docker or podman) as IMAGE=$(IMAGE)"
	@echo "make compile-kfp Kubeflow Pipelines v2 spec in build/kfp/pipeline.yaml"
	@echo "                 IMAGE=… PIPELINE_ROOT=gs://… KFP_DATA_ROOT=gs://… ARGS='--beam_runner=dataflow'"
	@echo "make submit-kfp  submit it: KFP_HOST=https://… [EXPERIMENT=yt8m]"
	@echo "make download    PARTITION=2/video/train [MIRROR=us SHARD=1,100] DOWNLOAD_DIR=data/yt8m/2018/video/train"
	@echo "make validate-data  read every record of DATA_ROOT: CRC, features, labels, generation"
	@echo "make bench       benchmarks (~40 min): bench/results.md and bench/results.json"
	@echo "make bench-scale every component at 1x-128x with its limits (~20 min): bench/scale.md"
	@echo "make bench-evaluator  the Evaluator alone at 8k-65k videos vs in-process scoring (~6 min)"
	@echo "make bench-workers  training on 1 vs 2 multi_worker_mirrored workers on 127.0.0.1 (~5 min)"
	@echo "make parity      beside the starter code at its settings (~40 min; bench/README.md):"
	@echo "                 STARTER_DIR=../youtube-8m STARTER_PYTHON=~/tf115/bin/python PARITY_DATA=..."
	@echo "make parity-segments  segment MAP of the pushed segment model, here and by the starter's"
	@echo "                 segment_eval_inference.py (same STARTER_DIR, STARTER_PYTHON)"
	@echo "make tensorboard LOGDIR=pipeline_output/Trainer/model_run/N: TensorBoard on 127.0.0.1:6006"
	@echo "make test        ruff + pytest (unit, end-to-end and Kubeflow tasks in the image)"
	@echo "make test-fast   ruff + unit tests only (skips the e2e, kfp and image tests)"
	@echo "make setup       create .venv from requirements.lock (idempotent; the image has its own)"
	@echo "make lock        re-resolve requirements.in into requirements.lock with uv"
	@echo "make clean       remove pipeline outputs and pushed models"
	@echo "VERBOSE=1 make … shows TensorFlow's C++ notices and dependencies' warnings"
	@$(if $(NATIVE),,echo "glibc $(or $(GLIBC),unknown) < $(GLIBC_NEEDED) here: targets run in the image $(IMAGE)")

image:
	@$(CONTAINER) build $(IMAGE) $(UV_VERSION)
	@touch $(IMAGE_STAMP)

# The image, rebuilt only when what it copies changed or it is gone (a cached rebuild still
# reads the whole context: about a minute here).
IMAGE_SOURCES := Dockerfile requirements.lock pyproject.toml README.md \
	$(shell find trainer_module components pipeline data_tools serving shards evaluation \
		-type f ! -name '*.pyc' 2>/dev/null)
IMAGE_STAMP := build/image-$(subst :,-,$(subst /,-,$(IMAGE))).stamp
$(IMAGE_STAMP): $(IMAGE_SOURCES) $(if $(NATIVE)$(IN_IMAGE),,$(shell $(CONTAINER) exists $(IMAGE) || echo FORCE))
	@mkdir -p build
	@$(MAKE) --no-print-directory image
FORCE:

serve:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		echo "docker run $(TF_SERVING_IMAGE) on $(abspath $(MODEL_BASE))"; \
		docker run --rm -p 127.0.0.1:$(PORT):8501 \
			-v "$(abspath $(MODEL_BASE))":/models/$(MODEL_NAME) -e MODEL_NAME=$(MODEL_NAME) \
			$(TF_SERVING_IMAGE); \
	else \
		echo "no Docker engine: local server with TF Serving's REST API (serving/server.py)"; \
		$(MAKE) --no-print-directory serve-local; \
	fi

# The targets that need the locked stack: here, or in the image (see NATIVE above).
STACK_TARGETS := setup run-local serve-local predict check-serving infer evaluate tensorboard \
	compile-kfp submit-kfp download validate-data bench bench-scale bench-evaluator bench-workers \
	parity parity-segments lint test test-fast lock

ifeq ($(NATIVE),)
$(STACK_TARGETS): $(IMAGE_STAMP)
	@echo "glibc $(or $(GLIBC),unknown) < $(GLIBC_NEEDED) (the lock's TFX wheels need it): 'make $@' runs in $(IMAGE)"
	@$(CONTAINER) run $(IMAGE) $(if $(filter test,$@),--engine-api) -- \
		make --no-print-directory $@ $(MAKEOVERRIDES)
else
setup: $(STAMP)

ifneq ($(IN_IMAGE),)
# The image's build installed its venv (Dockerfile); the host rebuilds the image when the lock
# or a source changes ($(IMAGE_STAMP)), so a work tree newer than the image's stamp is no cause.
$(STAMP):
	@echo "error: $(STAMP) is missing: YT8M_TFX_VENV=$(VENV) is not the image's installed venv" >&2; exit 1
else
$(STAMP): requirements.lock pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: Python $(PYTHON_VERSION) not found (the lock is for it): install it (e.g. 'pyenv install $(PYTHON_VERSION)') or pass PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 1; fi
	@if ! command -v c++ >/dev/null 2>&1; then \
		echo "error: a C++ compiler and Python's headers are needed (pyfarmhash, a TFDV dependency, has no wheel for Python $(PYTHON_VERSION)): e.g. 'apt-get install g++ python3-dev'" >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@[ -x $(UV) ] || $(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)
endif

run-local: setup $(RUN_DEPS)
	$(QUIET) $(PY) -m pipeline.run_local $(if $(MODEL),--model=$(MODEL)) \
		$(if $(TRAIN_STEPS),--train_steps=$(TRAIN_STEPS)) $(if $(PRESET),--preset=$(PRESET)) \
		--data_root=$(DATA_ROOT) $(FRAME_ARGS) $(RUN_ARGS) $(if $(VERBOSE),--verbose) $(ARGS)

# Frame-level sample: 20-60 one-second frames per real video of the bundled sample (seeded):
# shorter than real videos (120-300 frames) so that the quick start runs in minutes.
$(FRAME_SAMPLE)/.done: trainer_module/frames.py | setup
	@for split in train validate; do \
		$(PY) -m data_tools.make_frame_data --input_pattern="data/sample/video/$$split/*.tfrecord" \
			--output_dir=$(FRAME_SAMPLE)/$$split --min_frames=20 --max_frames=60 || exit 1; done
	@touch $@

# The segment-rated fixture: the bundled real frame-level videos with seeded ratings.
$(SEGMENT_SAMPLE)/.done: data_tools/make_segment_data.py trainer_module/segment_label_ids.csv | setup
	@for split in train validate; do \
		$(PY) -m data_tools.make_segment_data --input_pattern="data/sample/frame/$$split/*.tfrecord" \
			--output_dir=$(SEGMENT_SAMPLE)/$$split || exit 1; done
	@touch $@

serve-local: setup
	$(QUIET) $(PY) -m serving.server --model_name=$(MODEL_NAME) --model_base_path=$(MODEL_BASE) \
		--rest_api_port=$(PORT)

predict: setup
	$(PY) -m serving.client --input=data/sample/video/validate/validate0048.tfrecord \
		--model_name=$(MODEL_NAME) --port=$(PORT)

check-serving: setup
	$(PY) -m serving.check_server --model_dir=$(MODEL_BASE) \
		--input=data/sample/video/validate/validate0048.tfrecord \
		--model_name=$(MODEL_NAME) --port=$(PORT)

infer: setup
ifeq ($(SEGMENTS),1)
	$(QUIET) $(PY) -m evaluation.segments --model_dir=$(MODEL_BASE) \
		--input_data_pattern='$(INPUT)' --output_file=$(OUTPUT) $(ARGS)
else
	$(QUIET) $(PY) -m serving.batch_predict --model_dir=$(MODEL_BASE) --input_data_pattern='$(INPUT)' \
		--output_file=$(OUTPUT) $(ARGS)
endif

evaluate: setup
	$(QUIET) $(PY) -m evaluation.offline_eval --model_dir=$(MODEL_BASE) --eval_data_pattern='$(INPUT)' \
		$(if $(filter 1,$(SEGMENTS)),--segment_labels) $(ARGS)

LOGDIR ?= pipeline_output/Trainer/model_run
tensorboard: setup
	$(VENV)/bin/tensorboard --logdir $(LOGDIR) --host 127.0.0.1 --port 6006

compile-kfp: setup
	$(PY) -m pipeline.kubeflow_runner compile --image=$(IMAGE) --pipeline_root=$(PIPELINE_ROOT) \
		--data_root=$(KFP_DATA_ROOT) --output=$(KFP_PACKAGE) $(ARGS)

submit-kfp: setup
	@if [ -z "$(KFP_HOST)" ]; then echo "error: set KFP_HOST=https://<your KFP endpoint>" >&2; exit 2; fi
	@[ -f $(KFP_PACKAGE) ] || $(MAKE) --no-print-directory compile-kfp
	$(PY) -m pipeline.kubeflow_runner submit --host=$(KFP_HOST) --package=$(KFP_PACKAGE) \
		--pipeline_root=$(PIPELINE_ROOT) --experiment=$(EXPERIMENT)

download: setup
	$(PY) -m data_tools.download --partition=$(PARTITION) --mirror=$(MIRROR) \
		--output_dir=$(DOWNLOAD_DIR) $(if $(SHARD),--shard=$(SHARD)) $(ARGS)

validate-data: setup $(RUN_DEPS)
	$(PY) -m data_tools.validate_data --data_root=$(DATA_ROOT) $(FRAME_ARGS) $(ARGS)

bench: setup
	$(PY) -m bench.run $(ARGS)

bench-scale: setup
	$(PY) -m bench.run --scale $(ARGS)

bench-evaluator: setup
	$(PY) -m bench.run --evaluator $(ARGS)

bench-workers: setup
	$(PY) -m bench.run --workers $(ARGS)

# The pushed segment model's MAP (SEGMENTS=1 make run-local first), here and by the
# starter's own segment_eval_inference.py; ARGS='--model_dir=… --eval_data_pattern=…'.
parity-segments: setup
	$(QUIET) $(PY) -m bench.segment_parity --starter_dir=$(STARTER_DIR) --starter_python=$(STARTER_PYTHON) $(ARGS)

parity: setup
	$(PY) -m bench.parity --starter_dir=$(STARTER_DIR) --starter_python=$(STARTER_PYTHON) \
		--data_root=$(PARITY_DATA) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# The whole suite. Kubeflow tasks start in containers of the image (tests/containers.py), so
# the image is built first; in the image itself it is already there.
test: lint $(if $(IN_IMAGE),,$(IMAGE_STAMP))
	@$(CONTAINER) with-engine-api -- $(PY) -m pytest -q

# Unit tests only: no whole-pipeline, Kubeflow-spec or image runs (minutes each).
test-fast: lint
	$(PY) -m pytest -q -m "not e2e"

lock: setup
	$(UV) pip compile --quiet requirements.in --python-version $(PYTHON_VERSION) \
		--python-platform x86_64-manylinux_$(subst .,_,$(GLIBC_NEEDED)) -o requirements.lock
endif

PARTITION ?= 2/video/validate
MIRROR ?= us
DOWNLOAD_DIR ?= data/yt8m/$(PARTITION)
# The starter code beside this project (bench/parity.py); nothing of it is in this repo.
STARTER_DIR ?= ../youtube-8m
STARTER_PYTHON ?= $(HOME)/tf115/bin/python
PARITY_DATA ?= data/sample/video

# make -s print-VARIABLE: a variable's value, for tests and scripts.
print-%:
	@echo $($*)

clean:
	rm -rf pipeline_output serving_model serving_model_segments build predictions.csv \
		segment_predictions.csv evaluation_report.html
