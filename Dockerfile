# The pipeline image for Kubeflow: exactly requirements.lock and this project on Python 3.10,
# the environment `make test` tests (tests/test_docker.py runs these RUN commands into a fresh
# venv and imports everything the compiled spec names).
#   make image IMAGE=registry.example/yt8m-tfx:0.1.0 && docker push …
FROM python:3.10.13-slim-bookworm

# Given by `make image` from the Makefile, the one place it is pinned.
ARG UV_VERSION
ENV VIRTUAL_ENV=/opt/venv
# The compiled spec runs `python -m pipeline.kfp_entrypoint`: this venv's python.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /opt/yt8m-tfx

COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --quiet --no-cache-dir "uv==$UV_VERSION" \
    && "$VIRTUAL_ENV/bin/uv" pip sync --quiet --python "$VIRTUAL_ENV/bin/python" requirements.lock

COPY pyproject.toml README.md ./
COPY trainer_module/ trainer_module/
COPY components/ components/
COPY pipeline/ pipeline/
COPY data_tools/ data_tools/
COPY serving/ serving/
COPY shards/ shards/
COPY evaluation/ evaluation/
RUN --mount=type=cache,target=/root/.cache/uv "$VIRTUAL_ENV/bin/uv" pip install --quiet \
    --python "$VIRTUAL_ENV/bin/python" --no-deps .
