# The environment image: Debian 13's own Python 3.13 and exactly requirements.lock, no project
# sources but the compiled custom ops (trainer_module/ops/). `make` runs its targets in a
# container of it with the work tree mounted and on PYTHONPATH (tools/container.sh), so an edit
# runs at once and rebuilds nothing; the image is tagged by a hash of this file, the locks and
# the ops, rebuilt only when one of them changes.
# Target env-cuda adds TensorFlow's CUDA libraries (requirements-cuda.lock) for NVIDIA hosts.
# The release image that Kubeflow pods run (`make image`, Dockerfile) is built on top of it.

# Debian's Python and what the venv needs at run time; the build tools stay in the stage below.
FROM debian:trixie-slim AS base
LABEL io.github.yt8m-tfx.image=environment
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates make \
    && rm -rf /var/lib/apt/lists/*
ENV YT8M_TFX_VENV=/opt/venv
# The compiled spec runs `python -m pipeline.kfp_entrypoint`: this venv's python.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /opt/yt8m-tfx

# Some locked packages ship no wheel for Python 3.13 (pyfarmhash, TFDV's): they compile here.
# Bytecode is compiled once here: each container (a Kubeflow task) would otherwise compile
# TensorFlow's and TFX's modules again on every start.
FROM base AS venv
# Given by tools/container.sh from requirements.in, the one place it is pinned.
ARG UV_VERSION
RUN apt-get update && apt-get install -y --no-install-recommends g++ python3-dev
# The optional secret `ca-certificates` is a CA bundle for hosts behind an intercepting proxy
# (tools/container.sh passes the host's); without it the image's own bundle is used.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then \
        export SSL_CERT_FILE=/run/secrets/ca-certificates PIP_CERT=/run/secrets/ca-certificates; fi \
    && python3 -m venv "$YT8M_TFX_VENV" \
    && "$YT8M_TFX_VENV/bin/pip" install --quiet --no-cache-dir "uv==$UV_VERSION" \
    && "$YT8M_TFX_VENV/bin/uv" pip sync --quiet --compile-bytecode \
        --python "$YT8M_TFX_VENV/bin/python" requirements.lock

# The frame reader's one-pass op (trainer_module/frame_records.py), against the lock's
# TensorFlow with the flags it reports for custom ops.
FROM venv AS ops
COPY frame_records.cc ./
RUN mkdir -p /opt/yt8m-tfx-ops && g++ -std=c++17 -shared -fPIC -O2 -Wall \
        -Wno-deprecated-declarations frame_records.cc -o /opt/yt8m-tfx-ops/frame_records.so \
        $("$YT8M_TFX_VENV/bin/python" -c 'import tensorflow as tf; \
            print(*tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags())')

# The stamp tells `make setup` in a container that this venv already holds the lock.
FROM base AS env
COPY --from=venv $YT8M_TFX_VENV $YT8M_TFX_VENV
RUN touch "$YT8M_TFX_VENV/.installed"
COPY --from=ops /opt/yt8m-tfx-ops /opt/yt8m-tfx-ops
ENV YT8M_TFX_FRAME_RECORDS_OP=/opt/yt8m-tfx-ops/frame_records.so

# The same venv plus the CUDA runtime libraries of TensorFlow's `and-cuda` extra: one more
# layer (docs/platforms.md says why it is a variant). Wheels only: no compiler needed.
FROM env AS env-cuda
LABEL io.github.yt8m-tfx.cuda=1
COPY requirements-cuda.lock ./
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then \
        export SSL_CERT_FILE=/run/secrets/ca-certificates; fi \
    && uv pip sync --quiet --python "$YT8M_TFX_VENV/bin/python" requirements-cuda.lock
