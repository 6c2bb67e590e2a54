"""`make bench`'s training section: the step time of every model at `make run-local`'s batch
size, each in a fresh process."""

from __future__ import annotations

import time

from bench.pipelines import BATCH_SIZE, SAMPLE, log


def training_step_row(name: str, data_name: str, root: str, steps: int) -> dict:
    """Times `steps` training steps of one model (after one to trace and warm up)."""
    import keras

    from trainer_module.frame_level_models import FRAME_LEVEL_MODELS
    from trainer_module.reader import make_dataset
    from trainer_module.train import compile_model
    from trainer_module.training_config import TrainingConfig

    frame = name in FRAME_LEVEL_MODELS
    config = TrainingConfig(model=name, batch_size=BATCH_SIZE,
                            feature_names="rgb,audio" if frame else "mean_rgb,mean_audio")
    dataset = make_dataset(f"{root}/*/*.tfrecord", config.feature_spec(), 3862, BATCH_SIZE,
                           shuffle=True, num_epochs=None, seed=0, max_frames=config.max_frames)
    keras.utils.set_random_seed(0)
    model = compile_model(config)
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    seconds = (time.perf_counter() - start) / steps
    return {"section": "training", "name": f"{name}, {data_name}" if frame else name,
            "rate": BATCH_SIZE / seconds, "unit": "examples/s", "step_ms": seconds * 1000,
            "parameters": model.count_params()}


def bench_training(models: list[str], timed_steps: dict[str, int],
                   frame_roots: dict[str, str]) -> list[dict]:
    """Step time of every model at make run-local's batch size; frame-level models on each
    set of frame-level shards (real lengths: up to 300 frames). Each model trains in a fresh
    process: the large ones (NetFV: 346 M parameters) leave memory behind that
    clear_session() does not return, and a dozen of them in one process ran out of 23 GB."""
    import multiprocessing

    from trainer_module.frame_level_models import FRAME_LEVEL_MODELS

    jobs = []
    for name in models:
        frame = name in FRAME_LEVEL_MODELS
        for data_name, root in (frame_roots.items() if frame else [("sample", SAMPLE)]):
            jobs.append((name, data_name, root, timed_steps["frame" if frame else "video"]))
    rows = []
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for job, row in zip(jobs, pool.imap(_training_step_star, jobs), strict=True):
            rows.append(row)
            log(f"training {job[0]} ({job[1]}): {row['step_ms']:.0f} ms/step")
    return rows


def _training_step_star(job: tuple) -> dict:
    return training_step_row(*job)
