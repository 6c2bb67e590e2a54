"""Real 2018 frame-level SequenceExamples (data/sample/frame/: 12 videos of 119–300 frames,
CC BY 4.0) are read, validated, trained on, served and run through the frame-level pipeline."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data_tools.validate_data import main as validate_data_main
from evaluation.offline_eval import evaluate_saved_model
from pipeline.run_local import main as run_local_main
from pipeline.summary import latest_run_result
from tests.conftest import PROJECT_ROOT
from tests.helpers import (
    assert_runs_in_tf_servings_loader,
    assert_variables_are_what_the_signatures_read,
    saved_model_cli_outputs,
    saved_model_cli_outputs_of_many,
)
from tests.test_models import NUM_CLASSES, SMALL_HPARAMS
from trainer_module.frame_level_models import FRAME_LEVEL_MODELS
from trainer_module.reader import make_dataset
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig

REAL_FRAMES = os.path.join(PROJECT_ROOT, "data", "sample", "frame")
TRAIN, VALIDATE = (os.path.join(REAL_FRAMES, split, "*.tfrecord") for split in
                   ("train", "validate"))


def records(pattern: str) -> list[bytes]:
    return [r.numpy() for r in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern))]


def frame_counts(pattern: str) -> list[int]:
    return [len(tf.train.SequenceExample.FromString(r).feature_lists.feature_list["rgb"].feature)
            for r in records(pattern)]


def frame_config(model_name: str = "FrameLevelLogisticModel", batch_size: int = 4):
    return TrainingConfig(model=model_name, batch_size=batch_size, feature_names="rgb,audio",
                          feature_sizes="1024,128", max_frames=300,
                          model_hparams=SMALL_HPARAMS.get(model_name, {}))


def test_the_fixture_spans_real_video_lengths():
    counts = frame_counts(TRAIN) + frame_counts(VALIDATE)
    assert len(counts) == 12 and min(counts) == 119 and max(counts) == 300


def test_the_reader_yields_every_real_frame_as_its_bytes():
    """Each video's rgb codes from the reader are its frames' bytes, in order (the reader
    interleaves shards, so videos are matched by content)."""
    config = frame_config()
    expected = sorted(b"".join(feature.bytes_list.value[0] for feature in
                               tf.train.SequenceExample.FromString(record)
                               .feature_lists.feature_list["rgb"].feature)
                      for record in records(TRAIN))
    read, frames = [], 0
    for features, labels in make_dataset(TRAIN, config.feature_spec(), NUM_CLASSES, 3,
                                         max_frames=config.max_frames):
        lengths = features["num_frames"].numpy()
        rgb = features["rgb"].numpy()
        assert rgb.dtype == np.uint8
        read += [rgb[row, :length].tobytes() for row, length in enumerate(lengths)]
        frames += int(lengths.sum())
        assert labels.numpy().sum(axis=1).min() >= 1
    assert sorted(read) == expected
    assert frames == sum(frame_counts(TRAIN))


def test_validate_data_accepts_real_frames(capsys):
    assert validate_data_main(["--data_root", REAL_FRAMES, "--frame_features"]) == 0


@pytest.fixture(scope="module")
def exported_frame_models(tmp_path_factory) -> dict[str, tuple[str, dict]]:
    """Every frame model trained one step on the real frames and exported; with what TF
    Serving's loading path (`saved_model_cli run`, one process for all) gives on the
    validate records."""
    root = tmp_path_factory.mktemp("frame_models")
    model_dirs = {}
    for model_name in sorted(FRAME_LEVEL_MODELS):
        model_dirs[model_name] = str(root / model_name / "model")
        train_and_export(frame_config(model_name), tf.io.gfile.glob(TRAIN),
                         tf.io.gfile.glob(VALIDATE), train_steps=1,
                         export_dir=model_dirs[model_name], log_dir=str(root / model_name))
    by_cli = saved_model_cli_outputs_of_many(list(model_dirs.values()), records(VALIDATE),
                                             str(root))
    return {name: (model_dir, outputs)
            for (name, model_dir), outputs in zip(model_dirs.items(), by_cli, strict=True)}


@pytest.mark.parametrize("model_name", sorted(FRAME_LEVEL_MODELS))
def test_every_frame_model_trains_and_serves_real_frames(exported_frame_models, model_name):
    model_dir, by_cli = exported_frame_models[model_name]
    served = records(VALIDATE)
    loaded = tf.saved_model.load(model_dir)
    scores = loaded.signatures["serving_default"](examples=tf.constant(served))["scores"]
    assert scores.shape == (len(served), NUM_CLASSES)
    assert_runs_in_tf_servings_loader(model_dir, loaded, served)
    np.testing.assert_array_equal(by_cli["scores"], scores.numpy())


@pytest.mark.e2e
def test_frame_level_pipeline_on_real_frames(tmp_path):
    """Anomalies stop a run before training: this run reaching the Pusher means the curated
    frame-level schema validates real SequenceExamples."""
    pipeline_root = tmp_path / "pipeline_root"
    assert run_local_main(["--frame_features", "--model", "FrameLevelLogisticModel",
                           "--data_root", REAL_FRAMES, "--pipeline_root", str(pipeline_root),
                           "--serving_model_dir", str(tmp_path / "serving"),
                           "--train_steps", "5", "--batch_size", "4",
                           "--max_frames", "300"]) == 0
    result = latest_run_result(str(pipeline_root / "metadata.sqlite"))
    assert result.metrics["example_count"] == 4
    assert result.blessed and result.pushed_path
    # The Evaluator's GAP is the eval CLI's on what was pushed.
    cli_metrics = evaluate_saved_model(result.pushed_path, VALIDATE)
    assert abs(result.metrics["gap"] - cli_metrics["gap"]) < 1e-4
    served = records(VALIDATE)
    loaded = tf.saved_model.load(result.pushed_path)
    by_python = loaded.signatures["serving_default"](examples=tf.constant(served))
    by_cli = saved_model_cli_outputs(result.pushed_path, served, str(tmp_path))
    np.testing.assert_array_equal(by_cli["scores"], by_python["scores"].numpy())
    assert_runs_in_tf_servings_loader(result.pushed_path, loaded, served)
    assert_variables_are_what_the_signatures_read(result.pushed_path, loaded)
