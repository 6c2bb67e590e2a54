"""`make bench-workers` (and a row of `make bench`): training on one process against two
`multi_worker_mirrored` workers on 127.0.0.1 at the same global batch."""

from __future__ import annotations

import glob

from bench.pipelines import BATCH_SIZE, SAMPLE, log


def bench_workers(workdir: str, steps: int, model: str = "MoeModel") -> list[dict]:
    """`model` trained for `steps` steps at make run-local's global batch by one process and
    by two `multi_worker_mirrored` workers on 127.0.0.1 (each its share of every batch), on
    the bundled sample: wall time (process start to export) and validate GAP."""
    from trainer_module.local_cluster import train_on_local_workers

    train = sorted(glob.glob(f"{SAMPLE}/train/*.tfrecord"))
    validate = sorted(glob.glob(f"{SAMPLE}/validate/*.tfrecord"))
    rows, one_worker_seconds = [], None
    for workers, distribution in ((1, "none"), (2, "multi_worker_mirrored")):
        config = {"model": model, "batch_size": BATCH_SIZE, "distribution": distribution}
        metrics, seconds = train_on_local_workers(
            config, train, validate, steps, f"{workdir}/workers{workers}/model",
            f"{workdir}/workers{workers}/logs", workers=workers, timeout_seconds=3600)
        one_worker_seconds = one_worker_seconds or seconds
        rows.append({"section": "workers", "name": f"{model}, {workers} worker(s)",
                     "rate": steps * BATCH_SIZE / seconds, "unit": "examples/s",
                     "seconds": seconds, "baseline": one_worker_seconds,
                     "ratio": one_worker_seconds / seconds, "gap": metrics[0]["gap"],
                     "steps": steps})
        log(f"workers {workers}: {seconds:.0f} s, GAP {metrics[0]['gap']:.4f}")
    return rows


# --- 3. batch inference --------------------------------------------------------------------

# --- report --------------------------------------------------------------------------------
