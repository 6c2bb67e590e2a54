# The pipeline image for Kubeflow: TFX 1.16's own image plus this project, so that every
# module path the compiled spec names (run_fn, preprocessing_fn, the TFMA metrics, the
# BatchPredict executor) imports inside each component's container.
#   make image IMAGE=registry.example/yt8m-tfx:0.1.0 && docker push …
FROM tensorflow/tfx:1.16.0

WORKDIR /opt/yt8m-tfx
COPY pyproject.toml README.md requirements.lock ./
COPY trainer_module/ trainer_module/
COPY components/ components/
COPY pipeline/ pipeline/
COPY serving/ serving/

# TFX and its dependencies come with the base image; add this project (package data included:
# the vocabulary and the curated frame-level schema) and the few libraries TFX lacks, at the
# versions the lock file pins.
RUN pip install --no-cache-dir --no-deps . \
    && pip install --no-cache-dir -c requirements.lock tqdm waitress orjson matplotlib \
    && python -c "import trainer_module.train, components.tfma_metrics, components.batch_predict"
