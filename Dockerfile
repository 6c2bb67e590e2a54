# The release image, for Kubeflow pods: the environment image (env.Dockerfile) with this
# project's sources installed, tagged with the project's version. `make image` builds it on
# the environment image it names (and `make image-cuda` on the CUDA one, IMAGE-cuda):
#   make image IMAGE=registry.example/yt8m-tfx:0.2.0 && docker push …
ARG ENV_IMAGE
FROM ${ENV_IMAGE}
COPY pyproject.toml README.md ./
COPY trainer_module/ trainer_module/
COPY components/ components/
COPY pipeline/ pipeline/
COPY data_tools/ data_tools/
COPY serving/ serving/
COPY shards/ shards/
COPY contract/ contract/
COPY evaluation/ evaluation/
# Built with the lock's setuptools, offline.
RUN "$YT8M_TFX_VENV/bin/uv" pip install --quiet --python "$YT8M_TFX_VENV/bin/python" \
        --no-deps --no-build-isolation --no-cache --compile-bytecode .
