"""Training on several devices or workers: the tf.distribute strategy by name, which worker
is the chief, and a `fit` that also runs under MultiWorkerMirroredStrategy."""

from __future__ import annotations

import dataclasses
import functools
import logging

import keras
import tensorflow as tf

from trainer_module.training_config import TrainingConfig

log = logging.getLogger(__name__)


class DeviceError(ValueError):
    """TensorFlow sees fewer GPUs than the training asked for."""


def check_gpus(required: int) -> None:
    """Raises DeviceError unless TensorFlow sees at least `required` GPUs."""
    if not required:
        return
    visible = len(tf.config.list_physical_devices("GPU"))
    if visible < required:
        raise DeviceError(
            f"--require_gpus {required}: TensorFlow sees {visible} GPU(s) (CUDA libraries: "
            "`make setup` on a host with an NVIDIA driver, or the CUDA image; into a "
            "container: GPUS=, docs/platforms.md)")


def with_starter_towers(config: TrainingConfig) -> TrainingConfig:
    """`config` with the starter's --num_gpu applied as its train.py applies it: one tower
    per GPU present, at most num_gpu and at least one (the CPU), each taking --batch_size
    videos, so a step takes batch_size × towers (and the learning-rate decay counts them);
    over several towers, mirrored."""
    if not config.num_gpu:
        return config
    towers = max(1, min(config.num_gpu, len(tf.config.list_physical_devices("GPU"))))
    return dataclasses.replace(
        config, batch_size=config.batch_size * towers,
        distribution="mirrored" if towers > 1 else config.distribution)


@functools.cache
def distribution_strategy(name: str, require_gpus: int = 0, max_gpus: int = 0
                          ) -> tf.distribute.Strategy:
    """The tf.distribute strategy called `name`; "none" is the default (one device) strategy.
    One per process: a multi-worker strategy configures the collectives at its first call,
    which must come before TensorFlow runs anything (`run_fn` calls it first). Raises
    DeviceError when fewer than `require_gpus` GPUs are visible.

    `mirrored` mirrors over every GPU of the machine (the first `max_gpus`, if given) or,
    with none, every logical CPU device
    (one, unless `tf.config.set_logical_device_configuration` split the CPU, as TF's own
    tests do). `multi_worker_mirrored` reads the cluster from TF_CONFIG, which Vertex AI
    Training and Kubeflow's TFJob operator set for each worker (docs/kubeflow.md).
    """
    check_gpus(require_gpus)
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")[:max_gpus or None]
        if gpus:
            return tf.distribute.MirroredStrategy(devices=[device.name for device in gpus])
        return tf.distribute.MirroredStrategy(
            devices=[device.name for device in tf.config.list_logical_devices("CPU")])
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "none":
        raise ValueError(f"unknown --distribution {name!r}")
    return tf.distribute.get_strategy()


def describe_devices(strategy: tf.distribute.Strategy, name: str) -> str:
    """One line naming the strategy and the devices a step runs on."""
    if name == "none":
        gpus = tf.config.list_logical_devices("GPU")
        return f"training on {gpus[0].name} (one device)" if gpus else "training on CPU"
    devices = list(strategy.extended.worker_devices)
    gpus = [device for device in devices if "GPU" in device.upper()]
    kind = f"GPU{'s' if len(gpus) > 1 else ''}" if gpus else (
        f"CPU device{'s' if len(devices) > 1 else ''}")
    workers = (f" on each of {strategy.num_replicas_in_sync // len(devices)} workers"
               if strategy.num_replicas_in_sync > len(devices) else "")
    return (f"training on {len(gpus or devices)} {kind}{workers} ({name}): "
            f"{', '.join(gpus or devices)}")


def worker_role(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is_chief, task_id) of this process: the chief writes the model, the logs and the
    checkpoints of record; one process alone is its own chief. As in TF's multi-worker
    guide, the chief is the `chief` task or, with none, worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker"
                                    and task_id == 0), task_id


def fit(model: keras.Model, dataset: tf.data.Dataset, steps: int,
        callbacks: list[keras.callbacks.Callback], strategy: tf.distribute.Strategy) -> None:
    """`model.fit` for `steps` steps of `dataset`. Under MultiWorkerMirroredStrategy, Keras 3's
    fit fails before the first step on features in a dict (its symbolic build reduces the
    first batch across workers: keras-team/keras#20329, #20585) and its train function then
    reduces the scalar loss along an axis it does not have, so there this runs fit's loop
    itself: the model's own `train_step` on each worker's share of the global batch (the
    strategy's distributed dataset), the optimizer summing the gradients across workers."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The reader shuffles; Keras' own shuffle applies to arrays only.
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=2, callbacks=callbacks,
                  shuffle=False)
        return
    with strategy.scope():
        if not model.optimizer.built:  # its slots are created here, not while tracing
            model.optimizer.build(model.trainable_variables)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def train_function(iterator):
        logs = strategy.run(model.train_step, args=(next(iterator),))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=1,
                                                 steps=steps)
    model.stop_training = False
    callback_list.on_train_begin()
    callback_list.on_epoch_begin(0)
    logs = {}
    for step in range(steps):
        callback_list.on_train_batch_begin(step)
        logs = train_function(iterator)
        callback_list.on_train_batch_end(step, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_epoch_end(0, logs)
    callback_list.on_train_end(logs)
    log.info("trained %d steps on %d workers", step + 1, strategy.num_replicas_in_sync)
