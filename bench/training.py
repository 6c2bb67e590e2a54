"""`make bench`'s training section: the step time of every model at `make run-local`'s batch
size, each in a fresh process, and the video-level models' step time against their matmul
floor at the starter's batch size."""

from __future__ import annotations

import statistics
import time

from bench.pipelines import BATCH_SIZE, SAMPLE, STARTER_BATCH_SIZE, log

FLOOR_MODELS = ("LogisticModel", "MoeModel")
FLOOR_TARGET = 1.15  # a float32 step within this factor of its matmuls' time


def matmul_floor_ms(model, batch_size: int, repeats: int = 5) -> float:
    """The least time a training step of `model` (a video-level model of dense layers) can
    take with this TensorFlow on this machine: its forward and weight-gradient matmuls (for
    each 2-D kernel [n, m]: [batch, n]·[n, m] and [n, batch]·[batch, m]) run alone in one
    graph, as TensorFlow runs them outside XLA; the median of `repeats` runs, in ms. The
    input's gradient, the activations, the loss and the optimizer are not counted."""
    import tensorflow as tf

    kernels = [tf.constant(weight.numpy()) for weight in model.trainable_weights
               if len(weight.shape) == 2]
    inputs = [tf.random.uniform([batch_size, kernel.shape[0]]) for kernel in kernels]
    output_gradients = [tf.random.uniform([batch_size, kernel.shape[1]]) for kernel in kernels]

    @tf.function
    def matmuls():
        return [product for x, kernel, gradient in zip(inputs, kernels, output_gradients,
                                                       strict=True)
                for product in (tf.matmul(x, kernel), tf.matmul(x, gradient, transpose_a=True))]

    matmuls()  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmuls()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def step_timer() -> tuple:
    """A Keras callback and the list it fills with each training step's wall time (s),
    steps_per_execution being 1: one batch callback a step."""
    import keras

    times: list[float] = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    return StepTimer(), times


def floor_row(name: str, root: str, steps: int) -> dict:
    """`name`'s step time at batch STARTER_BATCH_SIZE on the shards under `root` (median of
    `steps` steps after one to trace, as make run-local trains it) against its matmul floor
    measured in the same process before and after."""
    import keras

    from trainer_module.reader import make_dataset
    from trainer_module.train import compile_model
    from trainer_module.training_config import TrainingConfig

    config = TrainingConfig(model=name, batch_size=STARTER_BATCH_SIZE)
    dataset = make_dataset(f"{root}/*/*.tfrecord", config.feature_spec(), config.num_classes,
                           STARTER_BATCH_SIZE, shuffle=True, num_epochs=None, seed=0)
    keras.utils.set_random_seed(0)
    model = compile_model(config)
    floor = [matmul_floor_ms(model, STARTER_BATCH_SIZE)]
    timer, times = step_timer()
    model.fit(dataset, steps_per_epoch=steps + 1, epochs=1, verbose=0, shuffle=False,
              callbacks=[timer])
    floor.append(matmul_floor_ms(model, STARTER_BATCH_SIZE))
    step_ms = statistics.median(times[1:]) * 1000
    return {"section": "training", "name": f"{name} at batch {STARTER_BATCH_SIZE} vs its matmul "
            "floor", "rate": STARTER_BATCH_SIZE / step_ms * 1000, "unit": "examples/s",
            "step_ms": step_ms, "floor_ms": min(floor), "ratio": step_ms / min(floor),
            "target": FLOOR_TARGET, "first_step_ms": times[0] * 1000,
            "parameters": model.count_params()}


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


def bench_floor(root: str, steps: int) -> list[dict]:
    """FLOOR_MODELS' step time against their matmul floor, each in a fresh process."""
    import multiprocessing

    rows = []
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for row in pool.starmap(floor_row, [(name, root, steps) for name in FLOOR_MODELS]):
            rows.append(row)
            log(f"{row['name']}: {row['step_ms']:.0f} ms/step, floor {row['floor_ms']:.0f} ms")
    return rows


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
