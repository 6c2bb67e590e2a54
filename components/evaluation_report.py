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

from components.tfma_metrics import tfma_vertical_rows
from evaluation.report import score_labelled_files

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
    GAP per vertical is read from the Evaluator's TFMA slices."""
    model_dir = path_utils.serving_model_path(model.uri)
    split_uri = artifact_utils.get_split_uri([examples], split)
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    # GAP per vertical is TFMA's, so it is not computed here again.
    page = score_labelled_files(model_dir, files, per_vertical=False).html(
        "YouTube-8M evaluation report", {"model": model_dir, f"{split} split": split_uri},
        vertical_rows=tfma_vertical_rows(evaluation.uri))
    tf.io.gfile.makedirs(report.uri)  # not created by every orchestrator
    with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILENAME), "w") as f:
        f.write(page)
