# The pipeline image, for Kubeflow and for hosts whose glibc is older than the lock's wheels
# need (docs/platforms.md): Debian 13's own Python 3.13, exactly requirements.lock and this
# project. `make test` builds it and runs the suite and every Kubeflow task in it.
#   make image IMAGE=registry.example/yt8m-tfx:0.2.0 && docker push …

# Debian's Python and what the venv needs at run time; the build tools stay in the stage below.
FROM debian:trixie-slim AS base
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
# Given by `make image` from requirements.in, the one place it is pinned.
ARG UV_VERSION
RUN apt-get update && apt-get install -y --no-install-recommends g++ python3-dev
# The optional secret `ca-certificates` is a CA bundle for hosts behind an intercepting proxy
# (`make image` passes the host's); without it the image's own bundle is used.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then \
        export SSL_CERT_FILE=/run/secrets/ca-certificates PIP_CERT=/run/secrets/ca-certificates; fi \
    && python3 -m venv "$YT8M_TFX_VENV" \
    && "$YT8M_TFX_VENV/bin/pip" install --quiet --no-cache-dir "uv==$UV_VERSION" \
    && "$YT8M_TFX_VENV/bin/uv" pip sync --quiet --compile-bytecode \
        --python "$YT8M_TFX_VENV/bin/python" requirements.lock

FROM base
COPY --from=venv $YT8M_TFX_VENV $YT8M_TFX_VENV
COPY requirements.lock ./
COPY pyproject.toml README.md ./
COPY trainer_module/ trainer_module/
COPY components/ components/
COPY pipeline/ pipeline/
COPY data_tools/ data_tools/
COPY serving/ serving/
COPY shards/ shards/
COPY evaluation/ evaluation/
# Built with the lock's setuptools, offline. The stamp tells `make setup` (run in a container
# with the work tree mounted) that this venv already holds the lock and the project.
RUN "$YT8M_TFX_VENV/bin/uv" pip install --quiet --python "$YT8M_TFX_VENV/bin/python" \
        --no-deps --no-build-isolation --no-cache --compile-bytecode . \
    && touch "$YT8M_TFX_VENV/.installed"
