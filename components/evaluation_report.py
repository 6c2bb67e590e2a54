"""The `EvaluationReport` component: every pipeline run's HTML report (`evaluation.report`)
of the candidate model on the Evaluator's split. GAP per vertical is the Evaluator's: TFMA
slices by the `vertical1` feature that Transform derives from the labels.
"""

# No `from __future__ import annotations`: TFX reads the real annotation objects.

import os

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact
from tfx.types.standard_artifacts import Examples, Model, ModelEvaluation
from tfx.utils import path_utils

from components.tfma_metrics import load_evaluation, tfma_vertical_rows
from components.tfma_segment_metrics import SEGMENT_COUNT_NAME, SEGMENT_MAP_NAME
from evaluation.report import score_labelled_files
from trainer_module.export import load_training_config

REPORT_FILENAME = "evaluation_report.html"


class HtmlReport(Artifact):
    """A self-contained HTML evaluation report."""

    TYPE_NAME = "yt8m.HtmlReport"  # KFP needs "<namespace>.<Name>"


@tfx.dsl.components.component
def EvaluationReport(  # noqa: N802 — TFX components are named like classes
    model: tfx.dsl.components.InputArtifact[Model],
    examples: tfx.dsl.components.InputArtifact[Examples],
    evaluation: tfx.dsl.components.InputArtifact[ModelEvaluation],
    report: tfx.dsl.components.OutputArtifact[HtmlReport],
    split: tfx.dsl.components.Parameter[str] = "validate",
) -> None:
    """Writes the HTML report of the candidate model on the `split` split (the Evaluator's);
    GAP per vertical and segment MAP (segment-rated data) are read from the Evaluator."""
    model_dir = path_utils.serving_model_path(model.uri)
    training = load_training_config(model_dir)
    split_uri = artifact_utils.get_split_uri([examples], split)
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    segment_metrics = None
    if training.segment_labels:
        overall = load_evaluation(evaluation.uri)["candidate"]["Overall"]
        segment_metrics = {"max_pred": training.segment_max_pred,
                           **{name: overall[name] for name in (SEGMENT_MAP_NAME,
                                                               SEGMENT_COUNT_NAME)}}
    # GAP per vertical is TFMA's, not computed again, except in segment runs: their
    # Evaluator slices nothing.
    page = score_labelled_files(model_dir, files, per_vertical=training.segment_labels).html(
        "YouTube-8M evaluation report", {"model": model_dir, f"{split} split": split_uri},
        vertical_rows=None if training.segment_labels else tfma_vertical_rows(evaluation.uri),
        segment_metrics=segment_metrics)
    tf.io.gfile.makedirs(report.uri)  # not created by every orchestrator
    with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILENAME), "w") as f:
        f.write(page)
