"""Pipeline runs for the benchmarks: one `make run-local` per run in a fresh process
(`bench.pipeline_child`), timed per component, on the bundled and shared samples and on
synthetic data of growing size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from trainer_module.training_config import TrainingConfig

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(PROJECT_ROOT, "data", "sample", "video")
BATCH_SIZE = TrainingConfig().batch_size  # make run-local's default
STARTER_BATCH_SIZE = 1024  # the starter code's train.py and eval.py default


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


INGEST = ("ImportExampleGen", "ImportExamples", "StatisticsGen", "SchemaGen", "ExampleValidator",
          "Transform")


def run_pipeline(data_root: str, workdir: str, train_steps: int,
                 extra_args: list[str] = ()) -> dict:
    """One `run_local` in a fresh process: wall time, component times, peak RSS."""
    command = [sys.executable, "-m", "bench.pipeline_child", "--data_root", data_root,
               "--pipeline_root", f"{workdir}/pipeline_root",
               "--serving_model_dir", f"{workdir}/serving_model",
               "--train_steps", str(train_steps), "--batch_size", str(BATCH_SIZE), *extra_args]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"pipeline run failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    components = measured["components"]
    return {"wall_seconds": wall, "components": components,
            "component_windows": measured["component_windows"],
            "ingest_seconds": sum(v for k, v in components.items() if k in INGEST),
            "train_seconds": components.get("Trainer", 0.0),
            "evaluate_seconds": components.get("Evaluator", 0.0),
            "peak_rss_mb": measured["peak_rss_mb"],
            "component_peak_rss_mb": measured["component_peak_rss_mb"]}


def bench_pipelines(workdir: str, shared_data: str | None) -> tuple[list[dict], str]:
    rows = []
    targets = [("bundled sample", SAMPLE, 300)]
    if shared_data and os.path.isdir(shared_data):
        targets.append(("shared sample (13,998 videos)", shared_data, 300))
    else:
        log(f"no shared sample at {shared_data}: pipeline benchmark on the bundled sample only")
    for name, data_root, steps in targets:
        run = run_pipeline(data_root, f"{workdir}/{len(rows)}", steps)
        outside = 1 - run["train_seconds"] / run["wall_seconds"]
        rows.append({"section": "pipeline", "name": f"make run-local, {name}",
                     "rate": run["wall_seconds"], "unit": "s wall", "share_outside_training":
                     outside, "target": 120.0 if data_root == SAMPLE else None, **run})
        log(f"pipeline {name}: {run['wall_seconds']:.0f} s, {outside:.0%} outside training")
    return rows, f"{workdir}/0/serving_model"


def bench_growth(workdir: str, factors: tuple[int, ...], videos_per_shard: int) -> list[dict]:
    from data_tools.make_synthetic_data import main as make_synthetic_data

    rows = []
    for factor in factors:
        data = f"{workdir}/synthetic_{factor}x"
        make_synthetic_data(["--output_dir", data, "--train_shards", str(2 * factor),
                             "--validate_shards", "1", "--videos_per_shard",
                             str(videos_per_shard), "--seed", "1"])
        videos = 2 * factor * videos_per_shard
        run = run_pipeline(data, f"{workdir}/growth_{factor}x",
                           train_steps=max(1, videos // BATCH_SIZE))  # one epoch
        rows.append({"section": "growth", "name": f"{factor}x ({videos} training videos)",
                     "rate": videos / run["ingest_seconds"], "unit": "videos/s ingested",
                     "factor": factor, "videos": videos, **run})
        log(f"growth {factor}x: ingest {run['ingest_seconds']:.0f} s, train "
            f"{run['train_seconds']:.0f} s, peak RSS {run['peak_rss_mb']:.0f} MB")
    base = rows[0]
    for row in rows:
        for key in ("ingest_seconds", "train_seconds", "evaluate_seconds", "peak_rss_mb"):
            row[f"{key}_vs_1x"] = row[key] / base[key] if base[key] else None
    return rows
