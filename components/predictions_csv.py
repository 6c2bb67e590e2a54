"""`BatchPredict`: the pipeline's predict step. Writes the Kaggle predictions CSV of a blessed
model for the shards of `input_data_pattern` (e.g. the test partition, which has no labels).

The work is `serving.batch_predict`, the same code as the `make infer` CLI.
"""

# No `from __future__ import annotations`: TFX reads the real annotation objects.

import os

from tfx import v1 as tfx
from tfx.types.standard_artifacts import InferenceResult, Model, ModelBlessing
from tfx.utils import path_utils

from contract.saved_model import TOP_K
from serving.batch_predict import INFERENCE_BATCH_SIZE, write_predictions_csv

PREDICTIONS_FILENAME = "predictions.csv"


@tfx.dsl.components.component
def BatchPredict(  # noqa: N802 — TFX components are named like classes
    model: tfx.dsl.components.InputArtifact[Model],
    model_blessing: tfx.dsl.components.InputArtifact[ModelBlessing],
    predictions: tfx.dsl.components.OutputArtifact[InferenceResult],
    input_data_pattern: tfx.dsl.components.Parameter[str],
    top_k: tfx.dsl.components.Parameter[int] = TOP_K,
    batch_size: tfx.dsl.components.Parameter[int] = INFERENCE_BATCH_SIZE,
) -> None:
    """Scores every video of `input_data_pattern` with `model` if it was blessed."""
    if not model_blessing.get_int_custom_property("blessed"):
        predictions.set_int_custom_property("predicted", 0)
        return
    output_file = os.path.join(predictions.uri, PREDICTIONS_FILENAME)
    count = write_predictions_csv(path_utils.serving_model_path(model.uri), input_data_pattern,
                                  output_file, top_k, batch_size, progress=False)
    predictions.set_int_custom_property("predicted", 1)
    predictions.set_int_custom_property("num_videos", count)
