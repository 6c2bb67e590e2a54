"""The whole TFX pipeline with LocalDagRunner on a tiny real subset: three runs on one root
(blessed, worse, warm-started) checked step by step, and the frame-level, in-place, anomaly,
resume and tuner paths."""

import contextlib
import dataclasses
import html
import io
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components.tfma_metrics import tfma_vertical_rows
from evaluation.offline_eval import evaluate_saved_model
from evaluation.report import score_labelled_files
from pipeline.run_local import main
from pipeline.summary import latest_run_result
from serving.batch_predict import main as batch_predict_main
from tests.helpers import (
    assert_runs_in_tf_servings_loader,
    assert_variables_are_what_the_signatures_read,
    saved_model_cli_outputs,
)

pytestmark = pytest.mark.e2e


@dataclasses.dataclass
class Runs:
    """Three runs on one pipeline root: a blessed first run, a worse model from scratch, and
    a warm start from the served model; with what each printed."""

    serving: str
    validate_pattern: str
    first: object
    first_summary: str
    second: object
    second_summary: str
    served_after_second: list[str]
    third: object
    third_summary: str


@pytest.fixture(scope="module")
def runs(tiny_data_root, tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("e2e")
    pipeline_root, serving = root / "pipeline_root", root / "serving_model"
    metadata = str(pipeline_root / "metadata.sqlite")
    common = ["--data_root", tiny_data_root, "--pipeline_root", str(pipeline_root),
              "--serving_model_dir", str(serving), "--batch_size", "128"]
    validate_pattern = os.path.join(tiny_data_root, "validate", "*.tfrecord")

    def run(*argv) -> str:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main([*common, *argv]) == 0
        return printed.getvalue()

    first_summary = run("--train_steps", "40", "--eval_every_steps", "20",
                        "--predict_data_pattern", validate_pattern)
    first = latest_run_result(metadata)
    second_summary = run("--train_steps", "1", "--start_new_model")
    second = latest_run_result(metadata)
    served_after_second = os.listdir(serving)
    third_summary = run("--train_steps", "1", "--start_new_model", "--warm_start")
    return Runs(str(serving), validate_pattern, first, first_summary, second, second_summary,
                served_after_second, latest_run_result(metadata), third_summary)


def test_the_first_run_prints_the_metrics_and_pushes_its_best_validation_step(runs):
    first, summary = runs.first, runs.first_summary
    for title in ("GAP@20", "mAP", "Hit@1", "PERR"):
        assert title in summary
    assert first.blessed and first.pushed_path
    # Validated at steps 20 and 40; the model kept is the better one.
    gaps = dict(map(tuple, first.training_history["validation_gap_by_step"]))
    best = first.training_history["best_step"]
    assert sorted(gaps) == [20, 40] and gaps[best] == max(gaps.values())
    assert abs(gaps[best] - first.metrics["gap"]) < 1e-4
    assert f"Training:    kept step {best} of 40 (best validation GAP {gaps[best]:.4f})" in summary
    assert os.path.dirname(first.pushed_path) == runs.serving
    assert os.path.exists(os.path.join(first.pushed_path, "saved_model.pb"))


def test_every_component_prints_its_start_and_end_in_dag_order(runs):
    lines = runs.first_summary.splitlines()
    started = [m[1] for line in lines if (m := re.fullmatch(r"Component (\w+) is running\.", line))]
    finished = [m[1] for line in lines if (m := re.fullmatch(
        r"Component (\w+) is finished \((\d+ min )?\d+ s\)\.", line))]
    assert started == finished
    assert set(finished) == {"ImportExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
                             "StopOnAnomalies", "Transform", "Trainer", "BaselineModel",
                             "EvaluationSchema", "Evaluator", "EvaluationReport", "Pusher",
                             "BatchPredict"}
    order = finished.index
    assert order("ImportExampleGen") < order("StatisticsGen") < order("Transform") < order(
        "Trainer") < order("Evaluator") < order("Pusher")


def test_the_pushed_model_runs_in_tf_servings_loader_without_training_state(runs, tmp_path):
    """TF Serving's loading path runs the pushed model (Transform layer inside) and gives the
    Python call's scores on real records."""
    pushed = runs.first.pushed_path
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        tf.io.gfile.glob(runs.validate_pattern)).take(8)]
    loaded = tf.saved_model.load(pushed)
    by_cli = saved_model_cli_outputs(pushed, records, str(tmp_path))
    by_python = loaded.signatures["serving_default"](examples=tf.constant(records))
    np.testing.assert_array_equal(by_cli["scores"], by_python["scores"].numpy())
    assert_runs_in_tf_servings_loader(pushed, loaded, records)
    assert_variables_are_what_the_signatures_read(pushed, loaded)


def test_the_evaluators_metrics_equal_the_eval_clis_and_the_reports(runs):
    """The eval CLI scores the pushed SavedModel in process; the Evaluator ran TFMA on Beam."""
    first = runs.first
    cli_metrics = evaluate_saved_model(first.pushed_path, runs.validate_pattern)
    assert cli_metrics["num_examples"] == first.metrics["example_count"]
    for name in ("gap", "map", "hit_at_one", "perr"):
        assert abs(first.metrics[name] - cli_metrics[name]) < 1e-4, name
    assert first.metrics["gap"] > 0.1, "40 steps on real data learn something"
    assert f"Report:      {first.report_html}" in runs.first_summary
    with open(first.report_html) as f:
        assert f"<td>GAP@20</td><td>{first.metrics['gap']:.4f}</td>" in f.read()


def test_gap_per_vertical_of_the_evaluator_equals_numpy_slicing_and_the_report(runs):
    """TFMA's `vertical1` slices equal the eval CLI's numpy slicing, and are what the report
    shows."""
    first = runs.first
    tfma_rows = sorted(tfma_vertical_rows(first.evaluation_uri))
    numpy_rows = sorted(score_labelled_files(
        first.pushed_path, tf.io.gfile.glob(runs.validate_pattern)).vertical_rows())
    assert [r[:2] for r in tfma_rows] == [r[:2] for r in numpy_rows] and len(tfma_rows) > 3
    with open(first.report_html) as f:
        page = f.read()
    for (vertical, videos, gap), (_, _, numpy_gap) in zip(tfma_rows, numpy_rows, strict=True):
        assert abs(gap - numpy_gap) < 1e-4, vertical
        row = f"<tr><td>{html.escape(vertical)}</td><td>{videos}</td><td>{gap:.4f}</td></tr>"
        assert row in page


def test_the_predict_step_writes_what_make_infer_writes(runs, tmp_path):
    first = runs.first
    assert f"Predictions: {first.predictions_csv}" in runs.first_summary
    assert batch_predict_main(["--model_dir", first.pushed_path, "--input_data_pattern",
                               runs.validate_pattern, "--output_file",
                               str(tmp_path / "p.csv")]) == 0
    with open(first.predictions_csv) as step_csv, open(tmp_path / "p.csv") as cli_csv:
        rows = step_csv.read()
        assert rows == cli_csv.read()
    assert len(rows.splitlines()) == first.metrics["example_count"] + 1


def test_a_worse_model_is_evaluated_against_the_served_one_and_not_pushed(runs):
    """One step of training from scratch is far worse than the blessed model."""
    first, second = runs.first, runs.second
    assert second.baseline_metrics["gap"] == pytest.approx(first.metrics["gap"])
    assert second.metrics["gap"] < first.metrics["gap"]
    assert not second.blessed and second.pushed_path is None
    assert runs.served_after_second == [os.path.basename(first.pushed_path)]
    assert "Pushed to:   not pushed" in runs.second_summary
    assert second.training_history["warm_started_from"] is None


def test_a_warm_start_from_the_served_model_stays_close_to_it(runs):
    """One step from the served model's weights: the copy it started from is the pushed
    model, and its GAP stays near the served model's, far above a step from scratch."""
    first, third = runs.first, runs.third
    warm_start_copy = third.training_history["warm_started_from"]
    with open(os.path.join(warm_start_copy, "saved_model.pb"), "rb") as copy, open(
            os.path.join(first.pushed_path, "saved_model.pb"), "rb") as pushed:
        assert copy.read() == pushed.read()
    assert "Training:    warm-started from" in runs.third_summary
    assert third.metrics["gap"] == pytest.approx(first.metrics["gap"], abs=0.02)
    assert third.metrics["gap"] > runs.second.metrics["gap"] + 0.05


@pytest.fixture(scope="module")
def tiny_frame_root(tiny_data_root, tmp_path_factory) -> str:
    from data_tools.make_frame_data import main as make_frame_data

    root = tmp_path_factory.mktemp("yt8m_frames")
    for split in ("train", "validate"):
        assert make_frame_data([f"--input_pattern={tiny_data_root}/{split}/*.tfrecord",
                                f"--output_dir={root / split}", "--min_frames=10",
                                "--max_frames=40"]) == 0
    return str(root)


@pytest.fixture(scope="module")
def frame_pipeline_root(tmp_path_factory):
    return tmp_path_factory.mktemp("frame_pipeline") / "pipeline_root"


# FrameLevelLogisticModel's pipeline runs on the real frames (tests/test_real_frames.py).
@pytest.mark.parametrize("model,hparams", [
    ("DbofModel", ["--dbof_cluster_size=256", "--dbof_hidden_size=128", "--iterations=10"]),
    ("NetVLADModel", ["--netvlad_cluster_size=8", "--netvlad_hidden_size=128",
                      "--moe_prob_gating=true"]),
])
def test_frame_level_pipeline_evaluates_what_it_pushes(tmp_path, tiny_frame_root,
                                                       frame_pipeline_root, model, hparams):
    pipeline_root = frame_pipeline_root  # the models share the data steps' cached outputs
    assert main(["--frame_features", "--model", model, *hparams, "--max_frames", "40",
                 "--data_root", tiny_frame_root, "--pipeline_root", str(pipeline_root),
                 "--serving_model_dir", str(tmp_path / "serving"), "--train_steps", "20",
                 "--batch_size", "64"]) == 0
    result = latest_run_result(str(pipeline_root / "metadata.sqlite"))
    assert result.pushed_path
    validate_pattern = os.path.join(tiny_frame_root, "validate", "*.tfrecord")
    cli_metrics = evaluate_saved_model(result.pushed_path, validate_pattern)
    assert abs(result.metrics["gap"] - cli_metrics["gap"]) < 1e-4
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        tf.io.gfile.glob(validate_pattern)).take(4)]
    loaded = tf.saved_model.load(result.pushed_path)
    assert_runs_in_tf_servings_loader(result.pushed_path, loaded, records)
    assert_variables_are_what_the_signatures_read(result.pushed_path, loaded)


def test_imported_examples_are_used_in_place(tmp_path, tiny_data_root):
    data = tmp_path / "examples"
    for split in ("train", "validate"):
        os.makedirs(data / f"Split-{split}")
        for name in os.listdir(os.path.join(tiny_data_root, split)):
            os.symlink(os.path.join(tiny_data_root, split, name), data / f"Split-{split}" / name)
    pipeline_root = tmp_path / "pipeline_root"
    assert main(["--import_examples", "--data_root", str(data), "--pipeline_root",
                 str(pipeline_root), "--serving_model_dir", str(tmp_path / "serving"),
                 "--train_steps", "20", "--batch_size", "128"]) == 0
    assert "ImportExampleGen" not in os.listdir(pipeline_root), "no copy of the shards"
    result = latest_run_result(str(pipeline_root / "metadata.sqlite"))
    cli_metrics = evaluate_saved_model(result.pushed_path, str(data / "Split-validate" / "*"))
    assert cli_metrics["num_examples"] == result.metrics["example_count"]
    assert abs(result.metrics["gap"] - cli_metrics["gap"]) < 1e-4


def test_anomalies_stop_the_run_before_training(tmp_path, tiny_data_root, capsys):
    data = tmp_path / "data"
    shutil.copytree(os.path.join(tiny_data_root, "train"), data / "train")
    os.makedirs(data / "validate")
    # A validate shard whose videos lost their labels: the schema says every video has some.
    with tf.io.TFRecordWriter(str(data / "validate" / "unlabelled.tfrecord")) as writer:
        for record in tf.data.TFRecordDataset(str(data / "train" / "validate0000.tfrecord")):
            example = tf.train.Example.FromString(record.numpy())
            del example.features.feature["labels"]
            writer.write(example.SerializeToString())
    pipeline_root = tmp_path / "pipeline_root"
    assert main(["--data_root", str(data), "--pipeline_root", str(pipeline_root),
                 "--serving_model_dir", str(tmp_path / "serving"), "--train_steps", "5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ExampleValidator found anomalies: validate split, "
                          "feature 'labels':")
    assert err.endswith("(the run stopped before training)")
    assert not (pipeline_root / "Trainer").exists() and not (tmp_path / "serving").exists()


def test_an_interrupted_run_resumes_from_cache_and_checkpoint(tmp_path, tiny_data_root):
    import signal
    import subprocess
    import sys
    import time

    pipeline_root, train_dir = tmp_path / "pipeline_root", tmp_path / "train_dir"
    argv = ["--data_root", tiny_data_root, "--pipeline_root", str(pipeline_root),
            "--serving_model_dir", str(tmp_path / "serving"), "--model", "MoeModel",
            "--batch_size", "64", "--train_steps", "120", "--checkpoint_steps", "20",
            "--train_dir", str(train_dir)]
    process = subprocess.Popen([sys.executable, "-m", "pipeline.run_local", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A checkpoint is whole once the `checkpoint` state file names it: tf.train's
    # CheckpointManager writes it after the ckpt-N files, and restoring reads it.
    state = train_dir / "checkpoint"
    deadline = time.time() + 300
    while not (state.exists() and "ckpt-" in state.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # as abrupt as a power cut
    process.wait()
    assert state.exists(), "training never wrote a checkpoint"
    assert not (tmp_path / "serving").exists()

    assert main(argv) == 0
    result = latest_run_result(str(pipeline_root / "metadata.sqlite"))
    assert result.training_history["resumed_from_step"] >= 20
    assert result.training_history["final_step"] == 120
    assert result.pushed_path
    assert cached_components(str(pipeline_root / "metadata.sqlite")) >= {
        "ImportExampleGen", "StatisticsGen", "SchemaGen", "Transform"}


def cached_components(metadata_sqlite: str) -> set[str]:
    """Components of the latest run that were taken from the cache, not executed."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.summary import latest_run_executions

    return {name for name, execution in latest_run_executions(metadata_sqlite)
            if execution.last_known_state == metadata_store_pb2.Execution.CACHED}


def test_tuner_step_searches_and_the_trainer_uses_the_best(tmp_path, tiny_data_root):
    import glob
    import json

    from trainer_module.training_config import TrainingConfig
    from trainer_module.tuning import search_space

    pipeline_root = tmp_path / "pipeline_root"
    assert main(["--tune", "2", "--data_root", tiny_data_root, "--pipeline_root",
                 str(pipeline_root), "--serving_model_dir", str(tmp_path / "serving"),
                 "--train_steps", "10", "--batch_size", "128"]) == 0
    (best_file,) = glob.glob(str(pipeline_root / "Tuner" / "best_hyperparameters" / "*" / "*"))
    with open(best_file) as f:
        best = json.load(f)["values"]
    result = latest_run_result(str(pipeline_root / "metadata.sqlite"))
    with open(os.path.join(result.pushed_path, "assets.extra", "training_config.json")) as f:
        trained = json.load(f)
    assert best["base_learning_rate"] in search_space(TrainingConfig())["base_learning_rate"]
    assert trained["base_learning_rate"] == best["base_learning_rate"]
    assert trained["regularization_penalty"] == best["regularization_penalty"]
    (results_file,) = glob.glob(str(pipeline_root / "Tuner" / "tuner_results" / "*" / "*.json"))
    with open(results_file) as f:
        assert len(json.load(f)) == 2  # one row per trial
