"""Batch inference CSV, JSON→CSV conversion and the offline evaluation CLI."""

import csv
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from contract.saved_model import top_k
from evaluation.offline_eval import evaluate_saved_model
from evaluation.offline_eval import main as evaluate_main
from serving.batch_predict import main as predict_main
from serving.json_to_csv import main as json_to_csv_main
from tests.helpers import random_rows, write_frame_examples, write_video_examples
from trainer_module.features import FeatureSpec
from trainer_module.metrics import EvaluationMetrics
from trainer_module.reader import make_dataset


def in_process(model_dir, pattern):
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    records = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern))).batch(1000)
    outputs = [serve(examples=batch) for batch in records]
    ids = [v.decode() for out in outputs for v in out["video_id"].numpy()]
    return ids, np.concatenate([out["scores"].numpy() for out in outputs])


def test_top_k_puts_equal_scores_in_class_order_like_the_saved_model():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1], [0.2, 0.2, 0.2, 0.7, 0.2]], np.float32)
    class_ids, top_scores = top_k(scores, 3)
    expected = tf.math.top_k(scores, k=3)
    np.testing.assert_array_equal(class_ids, expected.indices.numpy())
    np.testing.assert_array_equal(class_ids, [[1, 3, 0], [3, 0, 1]])
    np.testing.assert_array_equal(top_scores, expected.values.numpy())


def read_predictions(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["VideoId", "LabelConfidencePairs"]
    parsed = {}
    for video_id, pairs in rows[1:]:
        values = pairs.split(" ")
        parsed[video_id] = ([int(c) for c in values[0::2]],
                            np.array(values[1::2], dtype=np.float32))
    return parsed


def test_predictions_csv_holds_the_models_top_20(tmp_path, serving_base, tiny_data_root):
    pattern = os.path.join(tiny_data_root, "validate", "*.tfrecord")
    output = tmp_path / "predictions.csv"
    assert predict_main(["--model_dir", serving_base, "--input_data_pattern", pattern,
                         "--output_file", str(output)]) == 0

    predictions = read_predictions(output)
    ids, scores = in_process(os.path.join(serving_base, "1"), pattern)
    assert list(predictions) == ids
    for video_id, row in zip(ids, scores, strict=True):
        class_ids, top_scores = predictions[video_id]
        assert len(class_ids) == 20
        np.testing.assert_array_equal(top_scores, row[class_ids])  # exact float32
        assert (np.diff(top_scores) <= 0).all()
        assert top_scores[-1] >= np.sort(row)[-20]


def test_2017_keys_without_labels_and_top_k(tmp_path, serving_base):
    rows = [{k: v for k, v in r.items() if k not in ("id", "labels")} | {"video_id": f"yt{i}"}
            for i, r in enumerate(random_rows(5, seed=4))]
    write_video_examples(str(tmp_path / "test.tfrecord.gz"), rows, compression="GZIP")
    output = tmp_path / "predictions.csv"
    assert predict_main(["--model_dir", serving_base, "--top_k", "3", "--input_data_pattern",
                         str(tmp_path / "*.gz"), "--output_file", str(output)]) == 0
    predictions = read_predictions(output)
    assert list(predictions) == [f"yt{i}" for i in range(5)]
    assert all(len(class_ids) == 3 for class_ids, _ in predictions.values())
    # More classes than the model's in-graph top 20: taken from its full scores.
    assert predict_main(["--model_dir", serving_base, "--top_k", "25", "--input_data_pattern",
                         str(tmp_path / "*.gz"), "--output_file", str(output)]) == 0
    longer = read_predictions(output)
    for video_id, (class_ids, scores) in longer.items():
        assert len(class_ids) == 25 and class_ids[:3] == predictions[video_id][0]
        assert (np.diff(scores) <= 0).all()


@pytest.mark.parametrize("make_input,message", [
    (lambda d: None, "matches no files"),
    (lambda d: (d / "a.tfrecord").write_bytes(b"\x00" * 30), "a.tfrecord: corrupt or truncated"),
    (lambda d: write_frame_examples(str(d / "a.tfrecord"), random_rows(2)),
     "a.tfrecord: records do not match the model's input"),
])
def test_bad_input_is_one_line_and_leaves_no_csv(tmp_path, capsys, serving_base, make_input,
                                                 message):
    data = tmp_path / "data"
    data.mkdir()
    make_input(data)
    output = tmp_path / "predictions.csv"
    assert predict_main(["--model_dir", serving_base, "--input_data_pattern",
                         str(data / "*.tfrecord"), "--output_file", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any(line.startswith("Traceback") for line in err)
    assert sorted(os.listdir(tmp_path)) == ["data"], "no CSV, not even a partial one"


def test_missing_model_is_one_line(tmp_path, capsys, tiny_data_root):
    assert predict_main(["--model_dir", str(tmp_path / "none"), "--input_data_pattern",
                         f"{tiny_data_root}/validate/*", "--output_file",
                         str(tmp_path / "p.csv")]) == 2
    assert "is neither a SavedModel nor a folder of numbered SavedModel versions" in (
        capsys.readouterr().err)


def test_json_predictions_convert_to_the_same_csv(tmp_path, serving_base, tiny_data_root):
    pattern = os.path.join(tiny_data_root, "validate", "*.tfrecord")
    assert predict_main(["--model_dir", serving_base, "--input_data_pattern", pattern,
                         "--output_file", str(tmp_path / "direct.csv")]) == 0
    ids, scores = in_process(os.path.join(serving_base, "1"), pattern)
    # A TF Serving REST response for the first half, the starter code's JSON lines for the rest.
    half = len(ids) // 2
    rest = [{"video_id": ids[i], "class_indexes": list(range(scores.shape[1])),
             "predictions": scores[i].tolist()} for i in range(half, len(ids))]
    (tmp_path / "a.json").write_text(json.dumps({"predictions": [
        {"video_id": ids[i], "scores": scores[i].tolist()} for i in range(half)]}))
    (tmp_path / "b.json").write_text("\n".join(json.dumps(p) for p in rest))
    assert json_to_csv_main(["--json_prediction_files_pattern", str(tmp_path / "*.json"),
                             "--csv_output_file", str(tmp_path / "converted.csv")]) == 0
    assert (tmp_path / "converted.csv").read_text() == (tmp_path / "direct.csv").read_text()


def test_json_conversion_names_the_bad_line(tmp_path, capsys):
    (tmp_path / "p.json").write_text('{"video_id": "a", "scores": [0.1, 0.9]}\n{"video_id": ')
    assert json_to_csv_main(["--json_prediction_files_pattern", str(tmp_path / "p.json"),
                             "--csv_output_file", str(tmp_path / "out.csv")]) == 2
    assert f"{tmp_path / 'p.json'}:2: not JSON" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out.csv")


def test_evaluation_cli_matches_metrics_and_writes_the_report(serving_base, tiny_data_root,
                                                             capsys, tmp_path):
    pattern = os.path.join(tiny_data_root, "validate", "*.tfrecord")
    _, scores = in_process(os.path.join(serving_base, "1"), pattern)
    spec = FeatureSpec.from_flags("mean_rgb,mean_audio", "1024,128")
    labels = np.concatenate([y for _, y in make_dataset(pattern, spec, 3862, 1000)])
    expected = EvaluationMetrics(3862, 20)
    expected.add(scores, labels)
    assert evaluate_saved_model(serving_base, pattern) == pytest.approx(
        {**expected.result(), "top_k": 20})

    report = tmp_path / "report.html"
    assert evaluate_main(["--model_dir", serving_base, "--eval_data_pattern", pattern,
                          "--report", str(report)]) == 0
    assert f"GAP@20    {expected.result()['gap']:.4f}" in capsys.readouterr().out

    # The report: metrics table, per-vertical section, embedded PNG plots.
    page = report.read_text()
    assert f"<td>GAP@20</td><td>{expected.result()['gap']:.4f}</td>" in page
    assert "<h2 id='verticals'>GAP per top-level vertical</h2>" in page
    verticals = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>([\d.]+)</td></tr>", page)
    assert ("Games" in {v for v, _, _ in verticals}
            and all(int(n) <= expected.result()["num_examples"] for _, n, _ in verticals))
    assert page.count("<img src='data:image/png;base64,") == 3


def test_evaluation_of_unlabelled_data_is_refused(tmp_path, capsys, serving_base):
    rows = [{k: v for k, v in r.items() if k != "labels"} for r in random_rows(3)]
    write_video_examples(str(tmp_path / "test.tfrecord"), rows)
    assert evaluate_main(["--model_dir", serving_base, "--eval_data_pattern",
                          str(tmp_path / "*.tfrecord"), "--report", ""]) == 2
    assert "has no labels; evaluation needs labelled data" in capsys.readouterr().err


def test_gap_is_labelled_with_the_configured_k_everywhere():
    """--top_k=5 makes GAP@5: in the HTML report, `make evaluate` and the run summary."""
    from evaluation.offline_eval import format_metrics
    from evaluation.report import ReportAccumulator
    from pipeline.summary import RunResult, format_summary

    rng = np.random.default_rng(0)
    report = ReportAccumulator(10, top_k=5, per_vertical=False)
    report.add(rng.random((8, 10)), (rng.random((8, 10)) < 0.2).astype(np.float32))
    page = report.html("t", {})
    assert "<td>GAP@5</td>" in page and "GAP@20" not in page
    metrics = {**report.metrics(), "top_k": 5}
    assert format_metrics(metrics).startswith("GAP@5 ")
    summary = format_summary(RunResult(
        metrics={**metrics, "example_count": 8}, baseline_metrics={}, blessed=True,
        pushed_path=None, model_uri="m", model_run_uri=None, evaluation_uri="e",
        training_history={}, top_k=5))
    assert "  GAP@5 " in summary and "GAP@20" not in summary


def test_infer_evaluate_and_json_to_csv_read_patterns_on_other_filesystems(
        tmp_path, serving_base, tiny_data_root):
    """TensorFlow's ram:// filesystem stands in for gs:// or s3://: one pattern helper
    (shards.files.expand_pattern) expands them all."""
    local = os.path.join(tiny_data_root, "validate", "*.tfrecord")
    remote_dir = f"ram://{tmp_path.name}/validate"
    tf.io.gfile.makedirs(remote_dir)
    for path in sorted(tf.io.gfile.glob(local)):
        tf.io.gfile.copy(path, f"{remote_dir}/{os.path.basename(path)}")
    remote = f"{remote_dir}/*.tfrecord"

    assert evaluate_saved_model(serving_base, remote) == evaluate_saved_model(serving_base,
                                                                              local)
    for pattern, name in ((local, "local.csv"), (remote, "remote.csv")):
        assert predict_main(["--model_dir", serving_base, "--input_data_pattern", pattern,
                             "--output_file", str(tmp_path / name)]) == 0
    assert (tmp_path / "local.csv").read_text() == (tmp_path / "remote.csv").read_text()

    ids, scores = in_process(os.path.join(serving_base, "1"), local)
    with tf.io.gfile.GFile(f"ram://{tmp_path.name}/predictions.json", "w") as f:
        f.write(json.dumps({"predictions": [{"video_id": i, "scores": s.tolist()}
                                            for i, s in zip(ids, scores, strict=True)]}))
    assert json_to_csv_main(["--json_prediction_files_pattern",
                             f"ram://{tmp_path.name}/*.json",
                             "--csv_output_file", str(tmp_path / "from_json.csv")]) == 0
    assert list(read_predictions(tmp_path / "from_json.csv")) == ids
