"""Multi-worker training on one machine: `train_and_export` in several worker processes that
find each other on 127.0.0.1 through TF_CONFIG, as Vertex AI Training and Kubeflow's TFJob
operator give each worker of a cluster (docs/kubeflow.md). For tests and benchmarks of
`--distribution=multi_worker_mirrored`; loopback only, and every run ends by itself.

TF_CONFIG is the cluster every worker shares plus the worker's own task:
`{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}`
(tf.distribute.cluster_resolver.TFConfigClusterResolver); without a `chief` task, worker 0
is the chief.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One worker: TF_CONFIG from its environment, the rest from argv[1]; its last line is
# `metrics <json>` (the chief's validation metrics, {} from the others).
_WORKER = """
import json, sys
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig
args = json.loads(sys.argv[1])
metrics = train_and_export(TrainingConfig.from_dict(args["config"]), args["train"],
                           args["eval"], args["steps"], args["export"], args["logs"])
print("metrics", json.dumps(metrics), flush=True)
"""


class WorkerError(RuntimeError):
    """A worker process failed or ran past its time; the message has its output's tail."""


def free_loopback_ports(count: int) -> list[int]:
    """`count` TCP ports free on 127.0.0.1 now (the OS picks them)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(workers: list[str], index: int) -> str:
    """The TF_CONFIG of worker `index` of the cluster `workers` (host:port each)."""
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker",
                                                                 "index": index}})


def train_on_local_workers(config: dict, train_files: list[str], eval_files: list[str],
                           steps: int, export_dir: str, log_dir: str, workers: int = 2,
                           timeout_seconds: float = 600, env: dict | None = None
                           ) -> tuple[list[dict], float]:
    """Trains `config` (a TrainingConfig dict; its `distribution` decides the strategy) in
    `workers` processes on 127.0.0.1; returns each worker's metrics (the chief's first) and
    the wall time. Raises WorkerError naming the worker that failed or timed out; all are
    stopped either way."""
    cluster = [f"127.0.0.1:{port}" for port in free_loopback_ports(workers)]
    args = json.dumps({"config": config, "train": train_files, "eval": eval_files,
                       "steps": steps, "export": export_dir, "logs": log_dir})
    start = time.perf_counter()
    processes = [subprocess.Popen(
        [sys.executable, "-c", _WORKER, args], cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {}), "TF_CONFIG": tf_config(cluster, index),
             "PYTHONPATH": PROJECT_ROOT},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for index in range(workers)]
    outputs = []
    try:
        for index, process in enumerate(processes):
            left = max(1.0, timeout_seconds - (time.perf_counter() - start))
            try:
                outputs.append(process.communicate(timeout=left)[0])
            except subprocess.TimeoutExpired:
                raise WorkerError(f"worker {index} still running after {timeout_seconds:.0f} "
                                  "s; all workers stopped") from None
    finally:
        for process in processes:
            process.kill()
            process.wait()
    wall = time.perf_counter() - start
    for index, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        if process.returncode != 0 or "\nmetrics " not in output:
            raise WorkerError(f"worker {index} exited {process.returncode}:\n"
                              + "\n".join(output.splitlines()[-20:]))
    # The metrics line's own JSON: the worker's stderr (merged) may go on after it.
    return [json.loads(output.rsplit("\nmetrics ", 1)[1].split("\n", 1)[0])
            for output in outputs], wall
