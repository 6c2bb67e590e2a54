"""The Transform component's `preprocessing_fn`.

Features pass through unchanged, so the Trainer may read raw shards with the fast batched
reader; what Transform adds is the dense multi-hot label the Evaluator (TFMA) needs. Its
graph is exported inside the SavedModel, so serving takes raw tf.Examples.
"""

from __future__ import annotations

import tensorflow as tf

from trainer_module.config import TrainingConfig
from trainer_module.features import LABELS_KEY, MULTI_HOT_LABELS_KEY, multi_hot


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Raw features → video-level model features plus `labels_multi_hot` [batch, classes]."""
    config = TrainingConfig.from_dict(custom_config["training"])
    spec = config.feature_spec()
    # Frame-level byte strings are decoded by the model's own reader, not by Transform.
    passed_through = [] if spec.is_frame_level else spec.names
    outputs = {name: tf.identity(inputs[name]) for name in passed_through}
    outputs[MULTI_HOT_LABELS_KEY] = multi_hot(inputs[LABELS_KEY], config.num_classes)
    return outputs
