"""Training checkpoints: resume an interrupted run from `train_dir`, or warm-start from an
exported model.

As in the starter code, a run with the same `train_dir` continues from the latest
checkpoint (`train_steps` counts from the first run) unless `start_new_model` is set.
"""

from __future__ import annotations

import json
import logging
import os

import keras
import tensorflow as tf

from trainer_module.export import TRAINED_WEIGHTS
from trainer_module.training_config import CONFIG_FILENAME, TrainingConfig

log = logging.getLogger(__name__)

# What a checkpoint's variables depend on: resuming with other values cannot work.
ARCHITECTURE_KEYS = ("model", "feature_names", "feature_sizes", "num_classes", "model_hparams")
MAX_CHECKPOINTS_KEPT = 2


class CheckpointMismatchError(ValueError):
    """`train_dir` holds checkpoints of a model with another architecture."""


def architecture(config: TrainingConfig) -> dict:
    values = config.to_dict()
    return {key: values[key] for key in ARCHITECTURE_KEYS}


def check_train_dir(config: TrainingConfig) -> None:
    """Raises CheckpointMismatchError if resuming from `config.train_dir` cannot work."""
    path = os.path.join(config.train_dir, CONFIG_FILENAME)
    if config.start_new_model or not config.train_dir or not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        saved_config = json.load(f)
    saved = {key: saved_config.get(key) for key in ARCHITECTURE_KEYS}
    wanted = architecture(config)
    changed = [f"{key} {saved[key]!r} → {wanted[key]!r}" for key in ARCHITECTURE_KEYS
               if saved[key] != wanted[key]]
    if changed:
        raise CheckpointMismatchError(
            f"--train_dir {config.train_dir} holds checkpoints of another model "
            f"({'; '.join(changed)}); pass --start_new_model or another --train_dir")


def _remove_checkpoints(train_dir: str) -> None:
    # Only checkpoint files: train_dir may be a folder the user keeps other things in.
    patterns = ("checkpoint", "ckpt-*", CONFIG_FILENAME)
    for pattern in patterns:
        for path in tf.io.gfile.glob(os.path.join(train_dir, pattern)):
            tf.io.gfile.remove(path)


def restore_or_start(model: keras.Model, config: TrainingConfig,
                     write_dir: str | None = None) -> tuple[tf.train.CheckpointManager, int]:
    """Restores the latest checkpoint of `config.train_dir` into the compiled `model` (and its
    optimizer) unless `start_new_model`; returns the manager and the restored step (0 if none).

    With `write_dir` (a multi-worker run's other workers: only the chief owns train_dir), the
    manager saves there instead and train_dir is only read.
    """
    owner = write_dir is None
    if config.start_new_model and owner:
        _remove_checkpoints(config.train_dir)
    if owner:
        check_train_dir(config)
        tf.io.gfile.makedirs(config.train_dir)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, write_dir or config.train_dir,
                                         max_to_keep=MAX_CHECKPOINTS_KEPT)
    latest = None if config.start_new_model and not owner else tf.train.latest_checkpoint(
        config.train_dir)
    step = 0
    if latest:
        # Optimizer slots exist only once built; restoring needs them to exist.
        model.optimizer.build(model.trainable_variables)
        checkpoint.restore(latest).assert_existing_objects_matched()
        step = int(model.optimizer.iterations.numpy())
        log.info("resumed from %s at step %d", latest, step)
    if owner:
        with tf.io.gfile.GFile(os.path.join(config.train_dir, CONFIG_FILENAME), "w") as f:
            f.write(config.to_json())
    return manager, step


class SaveCheckpoints(keras.callbacks.Callback):
    """Saves a checkpoint every `every_steps` optimizer steps and when training ends."""

    def __init__(self, manager: tf.train.CheckpointManager, initial_step: int,
                 every_steps: int):
        super().__init__()
        self.manager = manager
        self.step = initial_step
        self.every_steps = every_steps
        self.saved_step = initial_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every_steps == 0:
            self._save()

    def on_train_end(self, logs=None):
        if self.saved_step != self.step:
            self._save()

    def _save(self):
        self.manager.save(checkpoint_number=self.step)
        self.saved_step = self.step


def warm_start(model: keras.Model, saved_model_dir: str) -> None:
    """Loads the weights of a model exported by `export_serving_model` (same architecture)."""
    # The SavedModel's variables are a checkpoint holding the trained model's weights, in
    # `model.weights` order, under TRAINED_WEIGHTS (and nothing of its optimizer).
    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, "variables", "variables"))
    saved_shapes = {key: shape for key, shape in reader.get_variable_to_shape_map().items()
                    if key.startswith(f"{TRAINED_WEIGHTS}/")}
    keys = [f"{TRAINED_WEIGHTS}/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(model.weights))]
    difference = next((f"{weight.path} is {saved_shapes.get(key)} there, {list(weight.shape)} here"
                       for weight, key in zip(model.weights, keys, strict=True)
                       if saved_shapes.get(key) != list(weight.shape)), None)
    if len(saved_shapes) != len(keys):
        difference = f"{len(saved_shapes)} weights there, {len(keys)} here"
    if difference:
        raise CheckpointMismatchError(f"cannot warm-start from {saved_model_dir}: its model "
                                      f"has another architecture ({difference})")
    model.set_weights([reader.get_tensor(key) for key in keys])
    log.info("warm-started from %s", saved_model_dir)
