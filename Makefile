# yt8m-tfx: `make run-local` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The lock's TFX wheels (ml-metadata, TFDV) need glibc >= 2.39 (manylinux_2_39) or macOS:
# there the targets run on this host. Elsewhere each target below runs in a container of the
# environment image (env.Dockerfile), with this work tree and the paths it names mounted
# (docs/platforms.md).
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
PROJECT := $(shell sed -n 's/^name = "\(.*\)"/\1/p' pyproject.toml)
ENV_REPO := $(PROJECT)-env
CONTAINER_ENV := ENV_REPO=$(ENV_REPO) UV_VERSION=$(UV_VERSION)
CONTAINER := $(CONTAINER_ENV) tools/container.sh
# GPUs to use (all by default; none; or indices: GPUS=0,1); in containers tools/container.sh
# passes them, natively CUDA_VISIBLE_DEVICES picks them.
GPUS ?=
ifeq ($(GPUS),none)
export CUDA_VISIBLE_DEVICES :=
else ifneq ($(filter-out all,$(GPUS)),)
export CUDA_VISIBLE_DEVICES := $(GPUS)
endif
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
RUN_ARGS := --pipeline_root=pipeline_output/segments
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
IMAGE ?= $(PROJECT):$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# The Trainer's image where it asks for GPUs: the same sources on the CUDA environment.
GPU_IMAGE ?= $(IMAGE)-cuda
PIPELINE_ROOT ?= gs://YOUR_BUCKET/yt8m
KFP_DATA_ROOT ?= $(PIPELINE_ROOT)/data/2018/video
KFP_PACKAGE ?= build/kfp/pipeline.yaml
KFP_HOST ?=
EXPERIMENT ?= yt8m

.PHONY: FORCE help setup run-local test test-fast lint lock clean serve predict check-serving infer \
	evaluate \
	bench bench-scale bench-full bench-evaluator bench-workers gpu-check parity parity-segments image image-cuda \
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
	@echo "make image       the release image for Kubeflow (docker or podman) as IMAGE=$(IMAGE)"
	@echo "make image-cuda  the same on TensorFlow's CUDA libraries, as GPU_IMAGE=$(GPU_IMAGE)"
	@echo "make compile-kfp Kubeflow Pipelines v2 spec in build/kfp/pipeline.yaml"
	@echo "                 IMAGE=… PIPELINE_ROOT=gs://… KFP_DATA_ROOT=gs://… ARGS='--beam_runner=dataflow'"
	@echo "make submit-kfp  submit it: KFP_HOST=https://… [EXPERIMENT=yt8m]"
	@echo "make download    PARTITION=2/video/train [MIRROR=us SHARD=1,100] DOWNLOAD_DIR=data/yt8m/2018/video/train"
	@echo "make validate-data  read every record of DATA_ROOT: CRC, features, labels, generation"
	@echo "make bench       benchmarks (~40 min): bench/results.md and bench/results.json"
	@echo "make bench-scale every component at 1x-128x with its limits (~20 min): bench/scale.md"
	@echo "make bench-full  the whole DAG on the 2018 dataset's size, 5 M synthetic videos (~25 min, ~25 GB): bench/full.md"
	@echo "make bench-evaluator  the Evaluator alone at 8k-65k videos vs in-process scoring (~6 min)"
	@echo "make gpu-check   on an NVIDIA GPU host: frame-level models on the GPU vs CPU (bench/gpu.md)"
	@echo "make bench-workers  training on 1 vs 2 multi_worker_mirrored workers on 127.0.0.1 (~5 min)"
	@echo "make parity      beside the starter code at its settings (~40 min; bench/README.md):"
	@echo "                 STARTER_DIR=../youtube-8m STARTER_PYTHON=~/tf115/bin/python PARITY_DATA=..."
	@echo "make parity-segments  segment MAP of the pushed segment model, here and by the starter's"
	@echo "                 segment_eval_inference.py (same STARTER_DIR, STARTER_PYTHON)"
	@echo "make tensorboard LOGDIR=pipeline_output/Trainer/model_run/N: TensorBoard on 127.0.0.1:6006"
	@echo "make test        ruff + pytest (unit, end-to-end, Kubeflow tasks in the release images)"
	@echo "make test-fast   ruff + unit tests only (skips the e2e, kfp and image tests)"
	@echo "make setup       create .venv from requirements.lock (idempotent; the image has its own)"
	@echo "make lock        re-resolve requirements.in into requirements.lock with uv"
	@echo "make clean       remove pipeline outputs and pushed models"
	@echo "VERBOSE=1 make … shows TensorFlow's C++ notices and dependencies' warnings"
	@$(if $(NATIVE),,echo "glibc $(or $(GLIBC),unknown) < $(GLIBC_NEEDED) here: targets run in the environment image $(ENV_REPO) (env.Dockerfile)")

# The release image for Kubeflow pods (Dockerfile: the sources baked in), on the environment
# image; image-cuda: on the CUDA one, for the Trainer pod that asks for GPUs.
image:
	@$(CONTAINER) image $(IMAGE)

image-cuda:
	@$(CONTAINER) image $(GPU_IMAGE) --cuda

serve:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		echo "docker run $(TF_SERVING_IMAGE) on $(abspath $(MODEL_BASE))"; \
		$(CONTAINER) attached run --rm -p 127.0.0.1:$(PORT):8501 \
			-v "$(abspath $(MODEL_BASE))":/models/$(MODEL_NAME) -e MODEL_NAME=$(MODEL_NAME) \
			$(TF_SERVING_IMAGE); \
	else \
		echo "no Docker engine: local server with TF Serving's REST API (serving/server.py)"; \
		$(MAKE) --no-print-directory serve-local; \
	fi

# The targets that need the locked stack: here, or in the image (see NATIVE above).
STACK_TARGETS := setup run-local serve-local predict check-serving infer evaluate tensorboard \
	compile-kfp submit-kfp download validate-data bench bench-scale bench-full bench-evaluator bench-workers \
	gpu-check parity parity-segments lint test test-fast lock

# The Makefile's knobs: given in the environment, they reach the make in the container as they
# do on the command line ($(MAKEOVERRIDES)), so both ways do the same on every host.
KNOBS := MODEL TRAIN_STEPS PRESET ARGS DATA_ROOT FRAME SEGMENTS VERBOSE MODEL_NAME PORT MODEL_BASE \
	INPUT OUTPUT IMAGE GPU_IMAGE PIPELINE_ROOT KFP_DATA_ROOT KFP_PACKAGE KFP_HOST EXPERIMENT LOGDIR \
	PARTITION MIRROR SHARD DOWNLOAD_DIR STARTER_DIR STARTER_PYTHON PARITY_DATA BENCH_DATA GPUS \
	TF_SERVING_IMAGE
ENVIRONMENT_KNOBS = $(foreach v,$(KNOBS),$(if $(filter environment%,$(origin $(v))),\
	'$(v)=$(subst ','\'',$(value $(v)))'))

# What each target reads and writes outside the work tree, mounted at its own path in the
# container (tools/container.sh run: --read must exist, --write-* are created here); the
# path-valued flags of ARGS are found there. Nothing else is mounted.
MOUNTS_run-local = --read 'DATA_ROOT=$(DATA_ROOT)' --write-dir 'MODEL_BASE=$(MODEL_BASE)'
MOUNTS_validate-data = --read 'DATA_ROOT=$(DATA_ROOT)'
MOUNTS_infer = --read 'INPUT=$(INPUT)' --read 'MODEL_BASE=$(MODEL_BASE)' --write-file 'OUTPUT=$(OUTPUT)'
MOUNTS_evaluate = --read 'INPUT=$(INPUT)' --read 'MODEL_BASE=$(MODEL_BASE)'
MOUNTS_serve-local = --read 'MODEL_BASE=$(MODEL_BASE)'
MOUNTS_check-serving = --read 'MODEL_BASE=$(MODEL_BASE)'
MOUNTS_tensorboard = --read 'LOGDIR=$(LOGDIR)'
MOUNTS_compile-kfp = --write-file 'KFP_PACKAGE=$(KFP_PACKAGE)'
MOUNTS_submit-kfp = --write-file 'KFP_PACKAGE=$(KFP_PACKAGE)'
MOUNTS_download = --write-dir 'DOWNLOAD_DIR=$(DOWNLOAD_DIR)'
MOUNTS_bench = $(if $(BENCH_DATA),--read 'BENCH_DATA=$(BENCH_DATA)')
MOUNTS_parity = --read 'STARTER_DIR=$(STARTER_DIR)' --read 'STARTER_PYTHON=$(STARTER_PYTHON)' \
	$(STARTER_RUNTIME) --read 'PARITY_DATA=$(PARITY_DATA)'
MOUNTS_parity-segments = --read 'STARTER_DIR=$(STARTER_DIR)' \
	--read 'STARTER_PYTHON=$(STARTER_PYTHON)' $(STARTER_RUNTIME)
# The starter's Python: its venv and the interpreter the venv's python links to.
STARTER_RUNTIME = $(foreach d,$(dir $(patsubst %/,%,$(dir $(STARTER_PYTHON)))) \
	$(dir $(patsubst %/,%,$(dir $(realpath $(STARTER_PYTHON))))),--read 'STARTER_PYTHON=$(d)')

ifeq ($(NATIVE),)
IN_ENV_NOTE = glibc $(or $(GLIBC),unknown) < $(GLIBC_NEEDED) (the lock's TFX wheels need it): 'make $@' runs in the environment image
$(filter-out test,$(STACK_TARGETS)):
	@$(CONTAINER) run --say "$(IN_ENV_NOTE)" $(MOUNTS_$@) --flags '$(subst ','\'',$(ARGS))' -- \
		make --no-print-directory $@ $(ENVIRONMENT_KNOBS) $(MAKEOVERRIDES)

# First what make does in containers here (tests/host_containers.sh), then the suite in one;
# its Kubeflow tasks start in containers of the release images (tests/containers.py).
test: image image-cuda
	@$(CONTAINER_ENV) tests/host_containers.sh
	@YT8M_TFX_IMAGE=$(IMAGE) YT8M_TFX_GPU_IMAGE=$(GPU_IMAGE) $(CONTAINER) run --say "$(IN_ENV_NOTE)" \
		--engine-api -- \
		make --no-print-directory $@ $(ENVIRONMENT_KNOBS) $(MAKEOVERRIDES)
else
setup: $(STAMP)

ifneq ($(IN_IMAGE),)
# The environment image's build installed its venv (env.Dockerfile); tools/container.sh
# rebuilds the image when a lock changes, and the work tree is on PYTHONPATH.
$(STAMP):
	@echo "error: $(STAMP) is missing: YT8M_TFX_VENV=$(VENV) is not the image's installed venv" >&2; exit 1
else
# The lock natively: with TensorFlow's CUDA libraries where an NVIDIA driver lists a GPU.
LOCK := $(if $(shell nvidia-smi -L 2>/dev/null | grep '^GPU '),requirements-cuda.lock,requirements.lock)

$(STAMP): $(LOCK) pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: Python $(PYTHON_VERSION) not found (the lock is for it): install it (e.g. 'pyenv install $(PYTHON_VERSION)') or pass PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 1; fi
	@if ! command -v c++ >/dev/null 2>&1; then \
		echo "error: a C++ compiler and Python's headers are needed (pyfarmhash, a TFDV dependency, has no wheel for Python $(PYTHON_VERSION)): e.g. 'apt-get install g++ python3-dev'" >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@[ -x $(UV) ] || $(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(PY) $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)
endif

run-local: setup $(RUN_DEPS)
	$(QUIET) $(PY) -m pipeline.run_local $(if $(MODEL),--model=$(MODEL)) \
		$(if $(TRAIN_STEPS),--train_steps=$(TRAIN_STEPS)) $(if $(PRESET),--preset=$(PRESET)) \
		--data_root=$(DATA_ROOT) --serving_model_dir=$(MODEL_BASE) $(FRAME_ARGS) $(RUN_ARGS) \
		$(if $(VERBOSE),--verbose) $(ARGS)

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
	$(QUIET) $(PY) -m serving.client --input=data/sample/video/validate/validate0048.tfrecord \
		--model_name=$(MODEL_NAME) --port=$(PORT)

check-serving: setup
	$(QUIET) $(PY) -m serving.check_server --model_dir=$(MODEL_BASE) \
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
	$(QUIET) $(PY) -m pipeline.kubeflow_runner compile --image=$(IMAGE) --gpu_image=$(GPU_IMAGE) --pipeline_root=$(PIPELINE_ROOT) \
		--data_root=$(KFP_DATA_ROOT) --output=$(KFP_PACKAGE) $(ARGS)

submit-kfp: setup
	@if [ -z "$(KFP_HOST)" ]; then echo "error: set KFP_HOST=https://<your KFP endpoint>" >&2; exit 2; fi
	@[ -f $(KFP_PACKAGE) ] || $(MAKE) --no-print-directory compile-kfp
	$(QUIET) $(PY) -m pipeline.kubeflow_runner submit --host=$(KFP_HOST) --package=$(KFP_PACKAGE) \
		--pipeline_root=$(PIPELINE_ROOT) --experiment=$(EXPERIMENT)

download: setup
	$(QUIET) $(PY) -m data_tools.download --partition=$(PARTITION) --mirror=$(MIRROR) \
		--output_dir=$(DOWNLOAD_DIR) $(if $(SHARD),--shard=$(SHARD)) $(ARGS)

validate-data: setup $(RUN_DEPS)
	$(QUIET) $(PY) -m data_tools.validate_data --data_root=$(DATA_ROOT) $(FRAME_ARGS) $(ARGS)

bench: setup
	$(QUIET) $(PY) -m bench.run $(if $(BENCH_DATA),--shared_data=$(BENCH_DATA)) $(ARGS)

bench-scale: setup
	$(QUIET) $(PY) -m bench.run --scale $(ARGS)

# The whole DAG on 5 M synthetic videos (23.6 GB written under build/bench_full, removed after
# unless KEEP=1): bench/full.md.
bench-full: setup
	$(QUIET) $(PY) -m bench.full $(if $(KEEP),--keep) $(ARGS)

# On a host with an NVIDIA GPU: three frame-level models on it and on the CPU (bench/gpu.md).
gpu-check: setup
	$(QUIET) $(PY) -m bench.gpu_check $(ARGS)

bench-evaluator: setup
	$(QUIET) $(PY) -m bench.run --evaluator $(ARGS)

bench-workers: setup
	$(QUIET) $(PY) -m bench.run --workers $(ARGS)

# The pushed segment model's MAP (SEGMENTS=1 make run-local first), here and by the
# starter's own segment_eval_inference.py; ARGS='--model_dir=… --eval_data_pattern=…'.
parity-segments: setup
	$(QUIET) $(PY) -m bench.segment_parity --starter_dir=$(STARTER_DIR) --starter_python=$(STARTER_PYTHON) $(ARGS)

parity: setup
	$(QUIET) $(PY) -m bench.parity --starter_dir=$(STARTER_DIR) --starter_python=$(STARTER_PYTHON) \
		--data_root=$(PARITY_DATA) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# The whole suite. Kubeflow tasks start in containers of the image (tests/containers.py), so
# the image is built first; in the image itself it is already there.
test: lint $(if $(IN_IMAGE),,image image-cuda)
	@$(CONTAINER) with-engine-api -- $(PY) -m pytest -q

# Unit tests only: no whole-pipeline, Kubeflow-spec or image runs (minutes each).
test-fast: lint
	$(QUIET) $(PY) -m pytest -q -m "not e2e"

LOCK_PLATFORM := --python-version $(PYTHON_VERSION) \
	--python-platform x86_64-manylinux_$(subst .,_,$(GLIBC_NEEDED))
lock: setup
	$(UV) pip compile --quiet requirements.in $(LOCK_PLATFORM) -o requirements.lock
	$(UV) pip compile --quiet requirements-cuda.in -c requirements.lock $(LOCK_PLATFORM) \
		-o requirements-cuda.lock
endif

PARTITION ?= 2/video/validate
MIRROR ?= us
DOWNLOAD_DIR ?= data/yt8m/$(PARTITION)
# The starter code beside this project (bench/parity.py); nothing of it is in this repo.
STARTER_DIR ?= ../youtube-8m
STARTER_PYTHON ?= $(HOME)/tf115/bin/python
PARITY_DATA ?= data/sample/video
# Real shards for the bench's real-data sections, where they are (train/ and validate/).
BENCH_DATA ?= $(wildcard ../shared/data/yt8m/2018/video)

# make -s print-VARIABLE: a variable's value, for tests and scripts.
print-%:
	@echo $($*)

clean:
	rm -rf pipeline_output serving_model serving_model_segments build predictions.csv \
		segment_predictions.csv evaluation_report.html
