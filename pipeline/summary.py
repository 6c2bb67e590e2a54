"""Reads what the last pipeline run produced from ML Metadata and prints it for people."""

from __future__ import annotations

import dataclasses
import json
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from contract.saved_model import TOP_K
from trainer_module.metrics import METRIC_NAMES, metric_titles
from trainer_module.segments import SEGMENT_MAX_PRED

BASELINE_MODEL = "BaselineModel"  # key of the LatestPushedModel output among the artifacts


@dataclasses.dataclass
class RunResult:
    """The outcome of the latest run: candidate/baseline metrics, blessing and push."""

    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    blessed: bool
    pushed_path: str | None
    model_uri: str
    model_run_uri: str | None
    evaluation_uri: str
    training_history: dict  # resumed_from_step, final_step, best_step, … (train.py)
    predictions_csv: str | None = None  # the BatchPredict step's CSV, if it ran and predicted
    report_html: str | None = None  # the EvaluationReport step's page
    neighbour_weight: float = 0.0  # the candidate's --neighbour_weight (its training config)
    top_k: int = TOP_K  # the candidate's --top_k, the k of its GAP@k
    segment_max_pred: int = SEGMENT_MAX_PRED  # the K of its segment MAP@K


def _serving_model_dir(model_uri: str) -> str:
    from tfx.utils import path_utils

    return path_utils.serving_model_path(model_uri)


def _training_history(model_uri: str) -> dict:
    from contract.saved_model import EXTRA_ASSETS_DIR
    from trainer_module.export import HISTORY_FILENAME

    path = os.path.join(_serving_model_dir(model_uri), EXTRA_ASSETS_DIR, HISTORY_FILENAME)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _store(metadata_sqlite: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_sqlite
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _latest_run(store) -> metadata_store_pb2.Context:
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise RuntimeError("ML Metadata holds no pipeline run")
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def latest_run_executions(metadata_sqlite: str
                          ) -> list[tuple[str, metadata_store_pb2.Execution]]:
    """The latest run's executions with their component's id (`ImportExampleGen`, `Trainer`,
    …), which stays the same when a component runs a project executor."""
    store = _store(metadata_sqlite)
    # A component's node context is named "<pipeline name>.<component id>".
    node_ids = {context.id: context.name.split(".", 1)[-1]
                for context in store.get_contexts_by_type("node")}
    result = []
    for execution in store.get_executions_by_context(_latest_run(store).id):
        node = next(context.id for context in store.get_contexts_by_execution(execution.id)
                    if context.id in node_ids)
        result.append((node_ids[node], execution))
    return result


def _latest_run_artifacts(store) -> dict[str, metadata_store_pb2.Artifact]:
    """The latest run's artifacts by type name; the LatestPushedModel copies (also of type
    Model) under BASELINE_MODEL."""
    from components.latest_pushed_model import SOURCE_PROPERTY

    latest = _latest_run(store)
    type_names = {t.id: t.name for t in store.get_artifact_types()}
    by_type = {}
    for artifact in sorted(store.get_artifacts_by_context(latest.id), key=lambda a: a.id):
        name = type_names[artifact.type_id]
        if SOURCE_PROPERTY in artifact.custom_properties:
            name = BASELINE_MODEL
        by_type[name] = artifact
    return by_type


def _baseline_was_pushed(baseline: metadata_store_pb2.Artifact | None) -> bool:
    from components.latest_pushed_model import SOURCE_PROPERTY

    return baseline is not None and bool(
        baseline.custom_properties[SOURCE_PROPERTY].string_value)


def _report_path(artifacts: dict) -> str | None:
    from components.evaluation_report import REPORT_FILENAME, HtmlReport

    artifact = artifacts.get(HtmlReport.TYPE_NAME)
    return os.path.join(artifact.uri, REPORT_FILENAME) if artifact else None


def latest_run_result(metadata_sqlite: str) -> RunResult:
    """The candidate model's metrics, blessing and push destination of the latest run."""
    artifacts = _latest_run_artifacts(_store(metadata_sqlite))
    evaluation = artifacts["ModelEvaluation"]
    blessing = artifacts["ModelBlessing"]
    pushed = artifacts.get("PushedModel")
    from components.tfma_metrics import load_evaluation
    from trainer_module.export import load_training_config

    evaluation_metrics = load_evaluation(evaluation.uri)
    training = load_training_config(_serving_model_dir(artifacts["Model"].uri))
    candidate = evaluation_metrics["candidate"]["Overall"]
    baseline = evaluation_metrics.get("baseline", {}).get("Overall", {})
    if not _baseline_was_pushed(artifacts.get(BASELINE_MODEL)):
        baseline = {}  # the candidate stood in for a baseline (nothing pushed yet)
    pushed_path = None
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        pushed_path = pushed.custom_properties["pushed_destination"].string_value
    model_run = artifacts.get("ModelRun")
    predictions = artifacts.get("InferenceResult")
    predictions_csv = None
    if predictions is not None and predictions.custom_properties["predicted"].int_value:
        from components.predictions_csv import PREDICTIONS_FILENAME

        predictions_csv = os.path.join(predictions.uri, PREDICTIONS_FILENAME)
    return RunResult(
        metrics=candidate,
        baseline_metrics=baseline,
        blessed=bool(blessing.custom_properties["blessed"].int_value),
        pushed_path=pushed_path,
        model_uri=artifacts["Model"].uri,
        model_run_uri=model_run.uri if model_run else None,
        evaluation_uri=evaluation.uri,
        training_history=_training_history(artifacts["Model"].uri),
        predictions_csv=predictions_csv,
        report_html=_report_path(artifacts),
        neighbour_weight=training.neighbour_weight,
        top_k=training.top_k,
        segment_max_pred=training.segment_max_pred,
    )


def format_summary(result: RunResult) -> str:
    """A short human summary: metrics table, blessing, pushed path, TensorBoard command."""
    from components.tfma_segment_metrics import SEGMENT_COUNT_NAME, SEGMENT_MAP_NAME

    names = [*METRIC_NAMES, SEGMENT_MAP_NAME, SEGMENT_COUNT_NAME, "example_count"]
    titles = {**metric_titles(result.top_k), SEGMENT_MAP_NAME: f"MAP@{result.segment_max_pred}",
              SEGMENT_COUNT_NAME: "segments", "example_count": "examples"}
    lines = ["", "Validate split", f"  {'metric':<10} {'candidate':>10} {'baseline':>10}"]
    for name in names:
        if name not in result.metrics:
            continue
        value = result.metrics[name]
        base = result.baseline_metrics.get(name)
        fmt = ((lambda v: f"{v:>10.0f}") if name in ("example_count", SEGMENT_COUNT_NAME)
               else (lambda v: f"{v:>10.4f}"))
        lines.append(f"  {titles[name]:<10} {fmt(value)} "
                     f"{fmt(base) if base is not None else '         -'}")
    history = result.training_history
    if history.get("resumed_from_step"):
        lines.append(f"Training:    resumed at step {history['resumed_from_step']} "
                     f"of {history['final_step']}")
    elif history.get("warm_started_from"):
        lines.append(f"Training:    warm-started from {history['warm_started_from']}")
    if history.get("best_step") is not None:
        best_gap = dict(map(tuple, history["validation_gap_by_step"]))[history["best_step"]]
        # Validation during training scores the trained model; the blend comes after it.
        blend = " before the neighbour blend" if result.neighbour_weight else ""
        metric = "segment MAP" if SEGMENT_MAP_NAME in result.metrics else "GAP"
        lines.append(f"Training:    kept step {history['best_step']} of {history['final_step']} "
                     f"(best validation {metric} {best_gap:.4f}{blend})")
    lines.append(f"Blessed:     {'yes' if result.blessed else 'no'}"
                 + ("" if result.baseline_metrics else " (no baseline yet)"))
    lines.append(f"Pushed to:   {result.pushed_path or 'not pushed'}")
    lines.append(f"Evaluation:  {result.evaluation_uri}")
    if result.report_html:
        lines.append(f"Report:      {result.report_html}")
    if result.predictions_csv:
        lines.append(f"Predictions: {result.predictions_csv}")
    if result.model_run_uri:
        # `make tensorboard` runs it on this host or in the image, as the pipeline ran.
        lines.append(f"TensorBoard: make tensorboard LOGDIR={result.model_run_uri}")
    return "\n".join(lines)
