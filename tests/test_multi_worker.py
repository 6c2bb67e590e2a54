"""`--distribution=multi_worker_mirrored` with two worker processes on 127.0.0.1: they train
together, checkpoint, resume and export one SavedModel (the chief's)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_rows, write_video_examples
from trainer_module.export import EXTRA_ASSETS_DIR, HISTORY_FILENAME

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = 2
TIMEOUT_SECONDS = 300  # each run; the workers are killed past it
# One worker's process: TF_CONFIG comes from its environment, the rest from argv[1].
WORKER = """
import json, sys
from trainer_module.train import distribution_strategy, train_and_export
from trainer_module.training_config import TrainingConfig
args = json.loads(sys.argv[1])
config = TrainingConfig(**args["config"])
print("replicas", distribution_strategy(config.distribution).num_replicas_in_sync, flush=True)
metrics = train_and_export(config, args["train"], args["eval"], args["steps"], args["export"],
                           args["logs"])
print("metrics", json.dumps(metrics), flush=True)
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train_on_two_workers(tmp_path, args: dict) -> list[str]:
    """Runs WORKERS processes to the end; returns their outputs."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(WORKERS)]}
    processes = []
    for index in range(WORKERS):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "PYTHONPATH": PROJECT_ROOT, "TMPDIR": str(tmp_path / "tmp")}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(args)], env=env, cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
            outputs.append(output)
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return outputs


@pytest.mark.e2e
def test_two_workers_train_checkpoint_resume_and_export_one_model(tmp_path):
    rows = random_rows(96, seed=3)
    train = []
    for shard in range(4):  # files are shared out between the workers
        train.append(str(tmp_path / f"train{shard}.tfrecord"))
        write_video_examples(train[-1], rows[shard * 20:(shard + 1) * 20])
    evaluation = str(tmp_path / "eval.tfrecord")
    write_video_examples(evaluation, rows[80:])
    (tmp_path / "tmp").mkdir()
    train_dir, export = tmp_path / "train_dir", tmp_path / "export"
    config = {"model": "MoeModel", "batch_size": 16, "checkpoint_steps": 3,
              "distribution": "multi_worker_mirrored", "train_dir": str(train_dir)}
    args = {"config": config, "train": train, "eval": [evaluation],
            "logs": str(tmp_path / "logs")}

    first = _train_on_two_workers(tmp_path, {**args, "steps": 6, "export": str(export / "1")})
    assert all(f"replicas {WORKERS}" in output for output in first)
    second = _train_on_two_workers(tmp_path, {**args, "steps": 10, "export": str(export / "2")})

    # One SavedModel per run, the chief's; the other worker's scratch folders are gone.
    assert sorted(os.listdir(export)) == ["1", "2"]
    assert os.listdir(tmp_path / "tmp") == []
    metrics = [json.loads(output.split("metrics ")[-1]) for output in second]
    assert metrics[1] == {} and metrics[0]["num_examples"] == 16
    with open(export / "2" / EXTRA_ASSETS_DIR / HISTORY_FILENAME) as f:
        history = json.load(f)
    assert (history["resumed_from_step"], history["final_step"]) == (6, 10)
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("ckpt-10")

    # The exported weights are those of the chief's last checkpoint: both workers' steps.
    reader = tf.train.load_checkpoint(str(train_dir))
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 10
    loaded = tf.saved_model.load(str(export / "2"))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(evaluation).take(4)]
    scores = loaded.signatures["serving_default"](examples=tf.constant(serialized))["scores"]
    assert scores.shape == (4, 3862) and np.isfinite(scores.numpy()).all()
