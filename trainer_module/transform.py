"""The Transform component's `preprocessing_fn`.

Features pass through unchanged, so the Trainer may read raw shards with the fast batched
reader; what Transform adds is what the Evaluator (TFMA) needs: the dense multi-hot label
and, for the 2018 vocabulary, each video's top-level verticals to slice the metrics by.
Its graph is exported inside the SavedModel, so serving takes raw tf.Examples.
"""

from __future__ import annotations

import tensorflow as tf

from trainer_module.features import (
    LABELS_KEY,
    MULTI_HOT_LABELS_KEY,
    NUM_CLASSES_2018,
    VERTICALS_KEY,
    multi_hot,
)
from trainer_module.training_config import TrainingConfig
from trainer_module.vocabulary import class_verticals

NO_LABELS_VERTICAL = "(no labels)"


def label_verticals(labels_multi_hot: tf.Tensor) -> tf.Tensor:
    """[batch, verticals] strings: the top-level verticals (`Vertical1`) of each video's labels.

    TFMA slices by the distinct values of a multivalent feature, and a Transform output needs
    a fixed width, so the row holds every vertical the video has and repeats its first one
    where it has not (a video without labels gets NO_LABELS_VERTICAL).
    """
    names, membership = class_verticals()
    names = tf.constant(names)
    present = tf.matmul(labels_multi_hot, tf.constant(membership, tf.float32)) > 0
    first = tf.gather(names, tf.argmax(tf.cast(present, tf.int32), axis=1))
    first = tf.where(tf.reduce_any(present, axis=1), first, NO_LABELS_VERTICAL)
    return tf.where(present, names[None, :], first[:, None])


# What preprocessing_fn reads of the training config. Transform is given only these, so that
# changing any other training flag leaves it cached (it analyzes the whole train split).
TRANSFORM_CONFIG_KEYS = ("feature_names", "feature_sizes", "num_classes")


def transform_custom_config(config: TrainingConfig) -> dict:
    """Transform's `custom_config` for `config`."""
    values = config.to_dict()
    return {"training": {key: values[key] for key in TRANSFORM_CONFIG_KEYS}}


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Raw features → video-level model features plus `labels_multi_hot` [batch, classes]
    and, with the 2018 vocabulary, `vertical1` [batch, verticals]."""
    config = TrainingConfig.from_dict(custom_config["training"])
    spec = config.feature_spec()
    # Frame-level byte strings are decoded by the model's own reader, not by Transform.
    passed_through = [] if spec.is_frame_level else spec.names
    outputs = {name: tf.identity(inputs[name]) for name in passed_through}
    outputs[MULTI_HOT_LABELS_KEY] = multi_hot(inputs[LABELS_KEY], config.num_classes)
    if config.num_classes == NUM_CLASSES_2018:
        outputs[VERTICALS_KEY] = label_verticals(outputs[MULTI_HOT_LABELS_KEY])
    return outputs
