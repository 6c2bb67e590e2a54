"""`--distribution=multi_worker_mirrored` with two worker processes on 127.0.0.1: they train
together, checkpoint, resume and export one SavedModel (the chief's)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from contract.saved_model import EXTRA_ASSETS_DIR
from tests.helpers import random_rows, write_video_examples
from trainer_module.export import HISTORY_FILENAME
from trainer_module.local_cluster import train_on_local_workers

TIMEOUT_SECONDS = 300  # each run; the workers are stopped past it


@pytest.mark.e2e
def test_two_workers_train_checkpoint_resume_and_export_one_model(tmp_path):
    rows = random_rows(96, seed=3)
    train_files = []
    for shard in range(4):  # the workers share the files out
        train_files.append(str(tmp_path / f"train{shard}.tfrecord"))
        write_video_examples(train_files[-1], rows[shard * 20:(shard + 1) * 20])
    evaluation = str(tmp_path / "eval.tfrecord")
    write_video_examples(evaluation, rows[80:])
    scratch, train_dir, export = tmp_path / "tmp", tmp_path / "train_dir", tmp_path / "export"
    scratch.mkdir()
    config = {"model": "MoeModel", "batch_size": 16, "checkpoint_steps": 3,
              "distribution": "multi_worker_mirrored", "train_dir": str(train_dir)}

    def train(steps: int) -> list[dict]:
        metrics, _ = train_on_local_workers(
            config, train_files, [evaluation], steps, str(export / str(steps)),
            str(tmp_path / "logs"), workers=2, timeout_seconds=TIMEOUT_SECONDS,
            env={"TMPDIR": str(scratch)})
        return metrics

    train(6)
    chief, other = train(10)  # resumes from the checkpoint of step 6

    # One SavedModel per run, the chief's; the other worker's scratch folders are gone.
    assert sorted(os.listdir(export)) == ["10", "6"]
    # (TensorFlow's autograph leaves its generated modules' bytecode there, not ours.)
    assert set(os.listdir(scratch)) <= {"__pycache__"}
    assert other == {} and chief["num_examples"] == 16
    with open(export / "10" / EXTRA_ASSETS_DIR / HISTORY_FILENAME) as f:
        history = json.load(f)
    assert (history["resumed_from_step"], history["final_step"], history["replicas"]) == (
        6, 10, 2)
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("ckpt-10")
    reader = tf.train.load_checkpoint(str(train_dir))
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 10

    loaded = tf.saved_model.load(str(export / "10"))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(evaluation).take(4)]
    scores = loaded.signatures["serving_default"](examples=tf.constant(serialized))["scores"]
    assert scores.shape == (4, 3862) and np.isfinite(scores.numpy()).all()
