"""Nearest-neighbour votes and their blend with a trained model."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (
    assert_runs_in_tf_servings_loader,
    assert_variables_are_what_the_signatures_read,
    random_rows,
    write_video_examples,
)
from trainer_module.checkpoints import warm_start
from trainer_module.metrics import EvaluationMetrics
from trainer_module.models import build_model
from trainer_module.neighbours import NeighbourVotes, blend_with_neighbours
from trainer_module.reader import make_dataset
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig


def reference_votes(features, labels, queries, num_classes, k, power):
    """The votes written plainly in numpy, one query at a time."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    references, queries = unit((features - mean) / std), unit((queries - mean) / std)
    scores = np.zeros((len(queries), num_classes))
    for row, query in enumerate(queries):
        similarity = references @ query
        nearest = np.argsort(-similarity)[:k]
        weights = np.maximum(similarity[nearest], 0) ** power
        for neighbour, weight in zip(nearest, weights / (weights.sum() + 1e-9), strict=True):
            scores[row, labels[neighbour]] += weight
    return scores


def test_votes_weight_each_neighbours_labels_by_its_similarity():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 8)).astype(np.float32)
    labels = [rng.choice(5, size=rng.integers(0, 3), replace=False) for _ in range(60)]
    queries = rng.normal(size=(4, 8)).astype(np.float32)

    votes = NeighbourVotes(features, labels, num_classes=5, k=7, power=4)(tf.constant(queries))

    np.testing.assert_allclose(votes, reference_votes(features, labels, queries, 5, 7, 4),
                               rtol=1e-4, atol=1e-6)


def test_a_training_video_finds_itself_first():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(40, 8)).astype(np.float32)
    labels = [np.array([i % 6]) for i in range(40)]
    votes = NeighbourVotes(features, labels, num_classes=6, k=1)(tf.constant(features[:5]))
    np.testing.assert_allclose(votes, np.eye(6)[[0, 1, 2, 3, 4]], atol=1e-6)


def test_too_few_training_videos_are_refused():
    with pytest.raises(ValueError, match="at least k=30 training videos, got 3"):
        NeighbourVotes(np.zeros((3, 2), np.float32), [np.array([0])] * 3, num_classes=2)


def test_the_blend_is_exported_served_and_warm_starts_the_trained_model(tmp_path):
    rows = random_rows(80, seed=3)
    train, evaluation = str(tmp_path / "train.tfrecord"), str(tmp_path / "eval.tfrecord")
    write_video_examples(train, rows[:64])
    write_video_examples(evaluation, rows[64:])
    config = TrainingConfig(model="MlpModel", batch_size=16, neighbour_weight=0.3,
                            neighbours=5, model_hparams={"mlp_hidden_size": 16})
    metrics = train_and_export(config, [train], [evaluation], train_steps=2,
                               export_dir=str(tmp_path / "model"), log_dir=str(tmp_path / "logs"))

    loaded = tf.saved_model.load(str(tmp_path / "model"))
    serialized = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(evaluation)])
    scores = loaded.signatures["serving_default"](examples=serialized)["scores"].numpy()
    served = EvaluationMetrics(config.num_classes)
    labels = np.zeros_like(scores)
    for row, video in enumerate(rows[64:]):
        labels[row, video["labels"]] = 1
    served.add(scores, labels)
    assert served.result()["gap"] == pytest.approx(metrics["gap"], abs=1e-6)
    assert_runs_in_tf_servings_loader(str(tmp_path / "model"), loaded, serialized.numpy())
    assert_variables_are_what_the_signatures_read(str(tmp_path / "model"), loaded)

    # The served scores are the blend: a training video's own labels get at least 0.3 × its
    # own similarity share, so they rank first.
    train_scores = loaded.signatures["serving_default"](examples=tf.constant(
        [r.numpy() for r in tf.data.TFRecordDataset(train)][:3]))["scores"].numpy()
    for row, video in enumerate(rows[:3]):
        assert set(np.argsort(-train_scores[row])[:len(video["labels"])]) == set(video["labels"])

    # The export warm-starts the trained model, not the blend: blended again with the same
    # training videos, the warm-started model serves what was served.
    model = build_model("MlpModel", config.feature_spec(), config.num_classes,
                        {"mlp_hidden_size": 16})
    features = next(iter(make_dataset(evaluation, config.feature_spec(), config.num_classes,
                                      batch_size=16, with_labels=False)))
    fresh = blend_with_neighbours(model, [train], config)(features, training=False).numpy()
    assert not np.allclose(fresh, scores, atol=1e-3)
    warm_start(model, str(tmp_path / "model"))
    blended = blend_with_neighbours(model, [train], config)(features, training=False)
    np.testing.assert_allclose(blended.numpy(), scores, atol=1e-5)


def test_the_summary_says_the_training_gap_comes_before_the_blend():
    from pipeline.summary import RunResult, format_summary

    history = {"final_step": 20, "best_step": 10, "validation_gap_by_step": [[10, 0.6], [20, 0.5]]}
    result = RunResult(metrics={"gap": 0.7}, baseline_metrics={}, blessed=True, pushed_path=None,
                       model_uri="model", model_run_uri=None, evaluation_uri="evaluation",
                       training_history=history, neighbour_weight=0.15)
    assert "kept step 10 of 20 (best validation GAP 0.6000 before the neighbour blend)" in (
        format_summary(result))
    result.neighbour_weight = 0.0
    assert "kept step 10 of 20 (best validation GAP 0.6000)\n" in format_summary(result)
