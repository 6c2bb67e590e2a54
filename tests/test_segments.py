"""The 2019 segment task: reading rated segments, the masked loss, segment MAP@K against a
restatement of the starter code's algorithm, the fixture generator and its checks, the
segment signatures through TF Serving's loading path and REST, and the submission CSV."""

from __future__ import annotations

import heapq
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from contract.saved_model import UNRATED
from data_tools import make_segment_data
from data_tools.validate_data import main as validate_data_main
from evaluation.offline_eval import evaluate_segments as evaluate_segments_cli
from evaluation.segments import main as segments_main
from pipeline.run_local import main as run_local_main
from tests.conftest import PROJECT_ROOT
from tests.helpers import FLOAT_ATOL, FLOAT_RTOL, post, rest_client, saved_model_cli_outputs
from trainer_module.export import TRAINED_WEIGHTS
from trainer_module.features import (
    FRAME_LEVEL_FEATURES,
    NUM_CLASSES_2018,
    NUM_FRAMES_KEY,
    FeatureSpec,
)
from trainer_module.losses import CrossEntropyLoss, HingeLoss, get_loss
from trainer_module.models import build_model
from trainer_module.reader import parse_frame_examples, segment_targets
from trainer_module.segment_metrics import SegmentRanking
from trainer_module.segments import (
    SEGMENT_LABELS_KEY,
    SEGMENT_SCORES_KEY,
    SEGMENT_START_TIMES_KEY,
    all_segments,
    rated_segments,
    segment_class_ids,
    segment_ratings,
)
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig

FRAMES = os.path.join(PROJECT_ROOT, "data", "sample", "frame")
SPEC = FeatureSpec.of(FRAME_LEVEL_FEATURES)


def starter_submission(scores: np.ndarray, segment_ids: list[str], class_ids: list[int],
                       top_n: int) -> dict[int, list[str]]:
    """inference.py restated: a heap of (score, segment id) per class, at most
    `segment_max_pred` (heappushpop keeps the larger pairs), listed by descending pair."""
    submission = {}
    for column, class_id in enumerate(class_ids):
        heap = []
        for row, segment in enumerate(segment_ids):
            item = (float(scores[row, column]), segment)
            if len(heap) >= top_n:
                heapq.heappushpop(heap, item)
            else:
                heapq.heappush(heap, item)
        submission[class_id] = [segment for _, segment in sorted(heap, reverse=True)]
    return submission


def starter_segment_map(scores: np.ndarray, segment_ids: list[str], ratings: dict,
                        class_ids: list[int], top_n: int) -> float:
    """segment_eval_inference.py restated on `starter_submission`: it keeps the rated
    segments of each class's list, scores them by rank and averages
    `AveragePrecisionCalculator.ap_at_n` (positives: all of the class's positive ratings)
    over the classes with a positive rating."""
    submission = starter_submission(scores, segment_ids, class_ids, top_n)
    positives = {}
    for (_, class_id), score in ratings.items():
        positives[class_id] = positives.get(class_id, 0) + (score > 0)
    average_precisions = []
    for class_id in sorted(submission):
        if not positives.get(class_id):
            continue  # MeanAveragePrecisionCalculator(filter_empty_classes=True)
        labels = [ratings[(s, class_id)] for s in submission[class_id] if (s, class_id) in ratings]
        hits, total = 0, 0.0
        for rank, label in enumerate(labels, start=1):
            if label > 0:
                hits += 1
                total += hits / rank
        average_precisions.append(total / positives[class_id])
    return float(np.mean(average_precisions))


def random_segments(seed: int, videos: int = 60, classes: int = 6, many_ties: bool = True):
    """Segments with tied scores, many (two decimals) or a few runs, and sparse 0/1
    ratings."""
    rng = np.random.default_rng(seed)
    ids = [f"v{v:02d}:{5 * s}" for v in range(videos) for s in range(rng.integers(1, 12))]
    scores = rng.random((len(ids), classes)).astype(np.float32)
    if many_ties:
        scores = np.round(scores, 2)
    else:
        scores[rng.choice(len(ids), 8, replace=False)] = scores[0]  # a run of 9 per class
    rated = rng.random(scores.shape) < 0.1
    ratings = np.where(rated, (rng.random(scores.shape) < 0.4).astype(np.float32), UNRATED)
    as_dict = {(ids[r], c): float(ratings[r, c]) for r, c in zip(*np.nonzero(rated), strict=True)}
    return ids, scores, ratings.astype(np.float32), as_dict


@pytest.mark.parametrize("many_ties", [True, False])
@pytest.mark.parametrize("top_n", [1, 7, 40, 100_000])
def test_segment_map_equals_the_starters_algorithm_with_ties(top_n, many_ties):
    ids, scores, ratings, as_dict = random_segments(seed=top_n, many_ties=many_ties)
    ranking = SegmentRanking(range(scores.shape[1]), top_n)
    for start in range(0, len(ids), 17):  # streamed in batches
        ranking.add(ids[start:start + 17], scores[start:start + 17], ratings[start:start + 17])
    classes = list(range(scores.shape[1]))
    expected = starter_segment_map(scores, ids, as_dict, classes, top_n)
    assert ranking.result()["segment_map"] == pytest.approx(expected, abs=1e-12)
    submission = starter_submission(scores, ids, classes, top_n)
    assert {class_id: [i.decode() for i in ranked] for class_id, ranked, _, _ in
            ranking.ranked()} == submission
    assert ranking.result()["segment_count"] == len(ids)


def test_merged_rankings_equal_one_ranking_and_keep_at_most_k():
    ids, scores, ratings, _ = random_segments(seed=3)
    whole, halves = SegmentRanking(range(6), 9), [SegmentRanking(range(6), 9) for _ in range(2)]
    whole.add(ids, scores, ratings)
    middle = len(ids) // 2
    halves[0].add(ids[:middle], scores[:middle], ratings[:middle])
    halves[1].add(ids[middle:], scores[middle:], ratings[middle:])
    halves[0].merge(halves[1])
    assert halves[0].result() == whole.result()
    for (_, merged_ids, _, _), (_, whole_ids, _, _) in zip(halves[0].ranked(), whole.ranked(),
                                                           strict=True):
        assert list(merged_ids) == list(whole_ids) and len(whole_ids) == 9


def test_the_masked_loss_is_the_rated_classes_loss_and_ignores_unrated_ones():
    rng = np.random.default_rng(0)
    predictions = rng.uniform(0.01, 0.99, (4, 10)).astype(np.float32)
    labels = (rng.random((4, 10)) < 0.5).astype(np.float32)
    weights = (rng.random((4, 10)) < 0.3).astype(np.float32)
    targets = segment_targets(tf.constant(labels), tf.constant(weights))
    loss = get_loss("CrossEntropyLoss", masked=True)
    expected = -(labels * np.log(predictions + 1e-5)
                 + (1 - labels) * np.log(1 - predictions + 1e-5)) * weights
    assert float(loss(targets, predictions)) == pytest.approx(expected.sum(1).mean(), rel=1e-5)
    # Anything in the unrated classes, labels or scores, leaves the loss and has no gradient.
    other_predictions = np.where(weights > 0, predictions, rng.uniform(0.01, 0.99, (4, 10)))
    other_labels = np.where(weights > 0, labels, 1 - labels)
    other_targets = segment_targets(tf.constant(other_labels), tf.constant(weights))
    assert float(loss(other_targets, other_predictions.astype(np.float32))) == pytest.approx(
        float(loss(targets, predictions)), rel=1e-6)
    variable = tf.Variable(predictions)
    with tf.GradientTape() as tape:
        value = loss(targets, variable)
    assert np.all(tape.gradient(value, variable).numpy()[weights == 0] == 0)
    hinge = get_loss("HingeLoss", masked=True)
    assert float(hinge(targets, predictions)) == pytest.approx(float(tf.reduce_mean(tf.reduce_sum(
        HingeLoss().per_class(labels, predictions) * weights, axis=1))), rel=1e-6)
    assert isinstance(hinge.loss, HingeLoss) and isinstance(loss.loss, CrossEntropyLoss)
    with pytest.raises(ValueError, match="per-class loss"):
        get_loss("SoftmaxLoss", masked=True)


def rated_video(video_id: str, frames: int, ratings: list[tuple[int, int, float]],
                seed: int = 0) -> bytes:
    """A SequenceExample of random frames with the given (class, start, score) ratings."""
    rng = np.random.default_rng(seed)
    example = tf.train.SequenceExample()
    example.context.feature["id"].bytes_list.value.append(video_id.encode())
    example.context.feature[SEGMENT_LABELS_KEY].int64_list.value[:] = [r[0] for r in ratings]
    example.context.feature[SEGMENT_START_TIMES_KEY].int64_list.value[:] = [r[1] for r in ratings]
    example.context.feature[SEGMENT_SCORES_KEY].float_list.value[:] = [r[2] for r in ratings]
    for name, size in SPEC.items():
        feature_list = example.feature_lists.feature_list[name]
        for _ in range(frames):
            feature_list.feature.add().bytes_list.value.append(
                rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return example.SerializeToString()


def test_rated_segments_are_the_starters_segments_with_label_weights():
    serialized = tf.constant([rated_video("a", 12, [(3, 5, 1.0), (7, 5, 0.0), (3, 10, 1.0)]),
                              rated_video("b", 7, [(11, 0, 1.0)], seed=1)])
    parsed = parse_frame_examples(serialized, SPEC, with_segments=True)
    features, labels, weights = rated_segments(parsed, SPEC, num_classes=20)
    # a:5, a:10 (2 frames left), b:0, in rating order.
    np.testing.assert_array_equal(features[NUM_FRAMES_KEY].numpy(), [5, 2, 5])
    np.testing.assert_array_equal(features["rgb"][0].numpy(), parsed["rgb"][0, 5:10].numpy())
    np.testing.assert_array_equal(features["rgb"][1, :2].numpy(), parsed["rgb"][0, 10:12].numpy())
    np.testing.assert_array_equal(np.nonzero(weights.numpy()), [[0, 0, 1, 2], [3, 7, 3, 11]])
    np.testing.assert_array_equal(np.nonzero(labels.numpy()), [[0, 1, 2], [3, 3, 11]])


def test_every_segment_is_listed_with_its_ratings():
    serialized = tf.constant([rated_video("a", 12, [(3, 5, 1.0), (7, 5, 0.0), (3, 6, 1.0)]),
                              rated_video("b", 4, [(11, 0, 1.0)], seed=1)])
    parsed = parse_frame_examples(serialized, SPEC, with_segments=True)
    segments = all_segments(parsed, SPEC)
    np.testing.assert_array_equal(segments["video_row"].numpy(), [0, 0, 0, 1])
    np.testing.assert_array_equal(segments["start_time"].numpy(), [0, 5, 10, 0])
    np.testing.assert_array_equal(segments[NUM_FRAMES_KEY].numpy(), [5, 5, 2, 4])
    columns = np.array([3, 7, 11])
    ratings = segment_ratings(parsed, segments["video_row"], segments["start_time"],
                              columns).numpy()
    # Start 6 begins no segment: its rating matches none, as in the starter's evaluation.
    np.testing.assert_array_equal(ratings, [[-1, -1, -1], [1, 0, -1], [-1, -1, -1],
                                            [-1, -1, 1]])


@pytest.fixture(scope="module")
def segment_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("segments")
    for split in ("train", "validate"):
        assert make_segment_data.main([f"--input_pattern={FRAMES}/{split}/*.tfrecord",
                                       f"--output_dir={root}/{split}"]) == 0
    return str(root)


def records_of(pattern: str) -> list[bytes]:
    return [record.numpy() for record in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern))]


def test_the_fixture_is_seeded_and_rated_as_the_2019_data(segment_root, tmp_path):
    assert make_segment_data.main([f"--input_pattern={FRAMES}/train/*.tfrecord",
                                   f"--output_dir={tmp_path}"]) == 0
    again = records_of(f"{tmp_path}/*.tfrecord")
    assert again == records_of(f"{segment_root}/train/*.tfrecord")
    vocabulary = set(segment_class_ids())
    assert len(vocabulary) == 1000
    for record in again:
        video = tf.train.SequenceExample.FromString(record)
        context = video.context.feature
        starts = list(context[SEGMENT_START_TIMES_KEY].int64_list.value)
        frames = len(video.feature_lists.feature_list["rgb"].feature)
        assert 1 <= len(starts) <= 5 and starts == sorted(set(starts))
        assert all(start % 5 == 0 and start < frames for start in starts)
        assert set(context[SEGMENT_LABELS_KEY].int64_list.value) <= vocabulary
        assert set(context[SEGMENT_SCORES_KEY].float_list.value) <= {0.0, 1.0}
    assert validate_data_main(["--data_root", segment_root, "--segment_labels"]) == 0


@pytest.mark.parametrize("field, value, message", [
    (SEGMENT_START_TIMES_KEY, 100_000, r"segment_start_times 100000 is outside the video"),
    (SEGMENT_SCORES_KEY, 1.5, r"segment_scores 1.5 is outside \[0, 1\]"),
    (SEGMENT_LABELS_KEY, 0, r"segment_labels 0 is not one of the 1000 rated classes"),
])
def test_bad_segment_ratings_are_one_line_naming_file_and_field(
        segment_root, tmp_path, capsys, field, value, message):
    for split in ("train", "validate"):
        os.makedirs(tmp_path / split)
        for name in os.listdir(os.path.join(segment_root, split)):
            with tf.io.TFRecordWriter(str(tmp_path / split / name)) as writer:
                for index, record in enumerate(records_of(f"{segment_root}/{split}/{name}")):
                    video = tf.train.SequenceExample.FromString(record)
                    if split == "validate" and index == 1:
                        feature = video.context.feature[field]
                        values = feature.float_list if field == SEGMENT_SCORES_KEY else (
                            feature.int64_list)
                        values.value[0] = value
                    writer.write(video.SerializeToString())
    assert validate_data_main(["--data_root", str(tmp_path), "--segment_labels"]) == 2
    error = capsys.readouterr().err.strip().split("\n")[-1]  # after the progress bar
    assert re.fullmatch(rf"error: \S+/validate/\S+\.tfrecord: video \w+: {message}.*", error)
    # The pipeline's pre-flight says the same, alone, and starts nothing.
    output = tmp_path / "out"
    assert run_local_main(["--segment_labels", "--model=FrameLevelLogisticModel",
                           f"--data_root={tmp_path}", f"--pipeline_root={output}",
                           f"--serving_model_dir={tmp_path / 'serving'}"]) == 2
    assert capsys.readouterr().err.strip() == error
    assert not output.exists() and not (tmp_path / "serving").exists()


@pytest.fixture(scope="module")
def segment_model(segment_root, tmp_path_factory) -> str:
    """A frame-level model trained on whole videos, then fine-tuned on the rated segments
    from its weights (the 2019 winners' recipe), exported as TF Serving's version 1."""
    base = tmp_path_factory.mktemp("segment_model")
    frames = TrainingConfig(model="FrameLevelLogisticModel", **SPEC.to_dict(), batch_size=4)
    train_and_export(frames, tf.io.gfile.glob(f"{FRAMES}/train/*"),
                     tf.io.gfile.glob(f"{FRAMES}/validate/*"), train_steps=3,
                     export_dir=str(base / "video_level"), log_dir=str(base / "logs"))
    segments = TrainingConfig(model="FrameLevelLogisticModel", **SPEC.to_dict(), batch_size=8,
                              segment_labels=True, warm_start_from=str(base / "video_level"))
    train_and_export(segments, tf.io.gfile.glob(f"{segment_root}/train/*"),
                     tf.io.gfile.glob(f"{segment_root}/validate/*"), train_steps=5,
                     export_dir=str(base / "serving" / "1"), log_dir=str(base / "logs"))
    return str(base / "serving" / "1")


def test_segment_training_warm_starts_from_a_video_level_frame_model(segment_model):
    """Fine-tuned for 5 steps, the segment model's weights stay near the video-level model's
    it started from, much nearer than a fresh model's are."""
    with open(os.path.join(segment_model, "assets.extra", "training_history.json")) as f:
        history = json.load(f)
    video_level = history["warm_started_from"]
    assert video_level.endswith("video_level")

    def weights(model_dir):
        reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
        keys = sorted((key for key in reader.get_variable_to_shape_map()
                       if key.startswith(f"{TRAINED_WEIGHTS}/")),
                      key=lambda key: int(key.split("/")[1]))  # model.weights order
        return np.concatenate([reader.get_tensor(key).ravel() for key in keys])

    start = weights(video_level)
    fresh = build_model("FrameLevelLogisticModel", SPEC, NUM_CLASSES_2018)
    fresh_distance = np.linalg.norm(np.concatenate([w.numpy().ravel() for w in fresh.weights])
                                    - start)
    assert np.linalg.norm(weights(segment_model) - start) < 0.2 * fresh_distance


def starter_segment_map_of_model(model_dir: str, pattern: str) -> tuple[float, int]:
    """The starter's segment MAP (`starter_segment_map`) of the model's `serving_segments`
    scores, with the ratings read from the records by hand; and the number of segments."""
    serve = tf.saved_model.load(model_dir).signatures["serving_segments"]
    outputs = serve(examples=tf.constant(records_of(pattern)))
    present = outputs["segment_start_times"].numpy() >= 0
    ids = [i.decode() for i in outputs["segment_ids"].numpy()[present]]
    ratings = {}
    for record in records_of(pattern):
        context = tf.train.SequenceExample.FromString(record).context.feature
        video_id = context["id"].bytes_list.value[0].decode()
        for label, start, score in zip(context[SEGMENT_LABELS_KEY].int64_list.value,
                                       context[SEGMENT_START_TIMES_KEY].int64_list.value,
                                       context[SEGMENT_SCORES_KEY].float_list.value,
                                       strict=True):
            ratings[(f"{video_id}:{start}", label)] = score
    return starter_segment_map(outputs["segment_scores"].numpy()[present], ids, ratings,
                               list(segment_class_ids()), 100_000), len(ids)


def test_segment_map_of_the_exported_model_equals_the_starters(segment_model, segment_root):
    pattern = f"{segment_root}/validate/*.tfrecord"
    metrics = evaluate_segments_cli(segment_model, pattern)
    expected, segments = starter_segment_map_of_model(segment_model, pattern)
    assert metrics["segment_map"] == pytest.approx(expected, abs=1e-9)
    assert metrics["segment_count"] == segments


def test_the_segment_signature_runs_in_tf_servings_loader_and_over_rest(segment_model,
                                                                        segment_root, tmp_path):
    served = records_of(f"{segment_root}/validate/*.tfrecord")
    by_python = {name: value.numpy() for name, value in tf.saved_model.load(
        segment_model).signatures["serving_segments"](examples=tf.constant(served)).items()}
    by_cli = saved_model_cli_outputs(segment_model, served, str(tmp_path), "serving_segments")
    np.testing.assert_allclose(by_cli["segment_scores"], by_python["segment_scores"],
                               FLOAT_RTOL, FLOAT_ATOL)
    np.testing.assert_array_equal(by_cli["segment_ids"], by_python["segment_ids"])
    assert by_python["segment_scores"].shape[2] == 1000
    client = rest_client("yt8m", os.path.dirname(segment_model))
    import base64

    status, text = post(client, "/v1/models/yt8m:predict", {
        "signature_name": "serving_segments",
        "instances": [{"b64": base64.b64encode(r).decode()} for r in served]})
    assert status == 200, text
    predictions = json.loads(text)["predictions"]
    for row, prediction in enumerate(predictions):
        present = by_python["segment_start_times"][row] >= 0
        assert prediction["segment_ids"] == [i.decode() for i in by_python["segment_ids"][row]]
        np.testing.assert_allclose(np.array(prediction["segment_scores"])[present],
                                   by_python["segment_scores"][row][present], FLOAT_RTOL,
                                   FLOAT_ATOL)


def test_the_submission_lists_at_most_k_segments_per_rated_class(segment_model, segment_root,
                                                                  tmp_path):
    output = tmp_path / "submission.csv"
    assert segments_main([f"--model_dir={os.path.dirname(segment_model)}",
                          f"--input_data_pattern={segment_root}/validate/*.tfrecord",
                          f"--output_file={output}", "--segment_max_pred=3"]) == 0
    lines = output.read_text().splitlines()
    assert lines[0] == "Class,Segments" and 1 <= len(lines) - 1 <= 1000
    vocabulary = set(segment_class_ids())
    for line in lines[1:]:
        class_id, segments = line.split(",")
        assert int(class_id) in vocabulary
        ids = segments.split(" ")
        assert 1 <= len(ids) <= 3 and all(re.fullmatch(r"\w+:\d*[05]", i) for i in ids)
    assert segments_main([f"--model_dir={segment_model}", "--input_data_pattern=/nothing/*",
                          f"--output_file={tmp_path / 'none.csv'}"]) == 2
    assert not (tmp_path / "none.csv").exists()


@pytest.mark.e2e
def test_the_segment_pipeline_blesses_on_segment_map_as_make_evaluate_computes_it(
        segment_root, tmp_path, capsys):
    """ExampleGen → … → Evaluator (segment MAP@K in TFMA) → Pusher on the segment fixture;
    the Evaluator's figure is the offline evaluation's of the pushed model."""
    from pipeline.summary import latest_run_result

    pipeline_root = tmp_path / "pipeline_root"
    assert run_local_main(["--segment_labels", "--model=FrameLevelLogisticModel",
                           f"--data_root={segment_root}", f"--pipeline_root={pipeline_root}",
                           f"--serving_model_dir={tmp_path / 'serving'}", "--train_steps=10",
                           "--batch_size=16"]) == 0
    summary = capsys.readouterr().out
    result = latest_run_result(str(pipeline_root / "metadata.sqlite"))
    assert result.blessed and result.pushed_path
    pattern = f"{segment_root}/validate/*.tfrecord"
    offline = evaluate_segments_cli(result.pushed_path, pattern)
    starter, segments = starter_segment_map_of_model(result.pushed_path, pattern)
    assert result.metrics["segment_map"] == pytest.approx(offline["segment_map"], abs=1e-6)
    assert result.metrics["segment_map"] == pytest.approx(starter, abs=1e-6)
    assert result.metrics["segment_count"] == offline["segment_count"] == segments
    assert re.search(rf"MAP@100000 +{result.metrics['segment_map']:.4f}", summary), summary
    with open(result.report_html) as f:
        assert f"<td>MAP@100000</td><td>{result.metrics['segment_map']:.4f}</td>" in f.read()


def test_the_tuner_searches_on_the_rated_validation_segments(segment_root, tmp_path):
    """With --segment_labels the Tuner's val_loss is the masked loss of the rated segments
    (the Trainer's validation batches are whole videos, without labels to fit)."""
    import types

    from trainer_module.tuning import tuner_fn

    config = TrainingConfig(model="FrameLevelLogisticModel", **SPEC.to_dict(), batch_size=8,
                            segment_labels=True)
    fn_args = types.SimpleNamespace(
        custom_config={"training": config.to_dict(), "tuning": {"max_trials": 1}},
        working_dir=str(tmp_path), train_files=tf.io.gfile.glob(f"{segment_root}/train/*"),
        eval_files=tf.io.gfile.glob(f"{segment_root}/validate/*"), train_steps=2,
        eval_steps=None)
    result = tuner_fn(fn_args)
    result.tuner.search(**result.fit_kwargs)
    best = result.tuner.oracle.get_best_trials(1)[0]
    assert np.isfinite(best.metrics.get_last_value("val_loss"))
