"""Inference benchmarks: the batch CSV path against in-process scoring, and the REST
server's latency per batch size against in-process scoring of the same batches."""

from __future__ import annotations

import glob
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.pipelines import BATCH_SIZE, PROJECT_ROOT, SAMPLE, log
from contract.saved_model import PREDICT_FEATURES_SIGNATURE, SERVING_DEFAULT_SIGNATURE


def bench_inference(model_dir: str) -> list[dict]:
    import tensorflow as tf

    from serving.batch_predict import write_predictions_csv
    from trainer_module.features import VIDEO_LEVEL_FEATURES, FeatureSpec
    from trainer_module.reader import make_dataset

    pattern = f"{SAMPLE}/validate/*.tfrecord"
    with tempfile.TemporaryDirectory() as tmp:
        write_predictions_csv(model_dir, pattern, f"{tmp}/warm.csv", progress=False)
        start = time.perf_counter()
        count = write_predictions_csv(model_dir, pattern, f"{tmp}/p.csv", progress=False)
        csv_rate = count / (time.perf_counter() - start)
    predict = tf.saved_model.load(model_dir).signatures[PREDICT_FEATURES_SIGNATURE]
    batches = list(make_dataset(pattern, FeatureSpec.of(VIDEO_LEVEL_FEATURES), 3862, BATCH_SIZE,
                                with_labels=False))
    predict(**batches[0])
    start = time.perf_counter()
    for features in batches:
        predict(**features)
    direct_rate = count / (time.perf_counter() - start)
    log(f"inference: CSV {csv_rate:.0f}/s vs in-process {direct_rate:.0f}/s")
    return [{"section": "inference", "name": "predictions CSV (read, parse, score, write)",
             "rate": csv_rate, "unit": "videos/s", "baseline": direct_rate,
             "ratio": csv_rate / direct_rate}]


# --- 4. serving ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def bench_serving(base_path: str, requests: dict[int, int]) -> list[dict]:
    import base64

    import tensorflow as tf

    from serving.model_dir import resolve_model_dir

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "serving.server", f"--model_base_path={base_path}",
         f"--rest_api_port={port}"], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        sorted(glob.glob(f"{SAMPLE}/validate/*.tfrecord"))).take(64)]
    serve = tf.saved_model.load(resolve_model_dir(base_path)).signatures[SERVING_DEFAULT_SIGNATURE]
    rows = []
    try:
        connection = _wait_for_server(port)
        for batch, count in requests.items():
            body = json.dumps({"instances": [
                {"b64": base64.b64encode(r).decode()} for r in records[:batch]]})
            examples = tf.constant(records[:batch])
            serve(examples=examples)
            in_process = []
            for _ in range(count):
                start = time.perf_counter()
                serve(examples=examples)
                in_process.append(time.perf_counter() - start)
            rest = []
            for _ in range(count + 5):
                start = time.perf_counter()
                connection.request("POST", "/v1/models/yt8m:predict", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status
                rest.append(time.perf_counter() - start)
            rest = rest[5:]  # the first requests trace the signature in the server
            p50, p99 = _percentiles(rest)
            base50, base99 = _percentiles(in_process)
            rows.append({"section": "serving", "name": f"REST predict, batch {batch}",
                         "rate": 1 / statistics.mean(rest), "unit": "requests/s",
                         "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3,
                         "baseline_p50_ms": base50 * 1e3, "baseline_p99_ms": base99 * 1e3,
                         "ratio": p50 / base50, "target": 2.0 if batch == 1 else None,
                         "requests": count})
            log(f"serving batch {batch}: p50 {p50 * 1e3:.1f} ms vs {base50 * 1e3:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def _wait_for_server(port: int, timeout: float = 120.0) -> http.client.HTTPConnection:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", "/v1/models/yt8m")
            if connection.getresponse().read() and True:
                return connection
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the serving benchmark's server did not start")


# --- 5./6. pipeline runs -------------------------------------------------------------------
