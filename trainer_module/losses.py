"""The starter code's label losses, as Keras losses over multi-hot labels and probabilities."""

from __future__ import annotations

import keras
import tensorflow as tf

_EPSILON = 1e-5


class CrossEntropyLoss(keras.losses.Loss):
    """Per-class binary cross-entropy, summed over classes and averaged over the batch.

    With `label_smoothing`, targets move from 0 and 1 towards 1/2 by that fraction: with
    thousands of classes and few videos each, the model stops chasing exact 0s and 1s on
    training videos it has already learned (docs/experiments.md).
    """

    def __init__(self, label_smoothing: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.label_smoothing = label_smoothing

    def call(self, labels, predictions):
        return tf.reduce_sum(self.per_class(labels, predictions), axis=1)

    def per_class(self, labels, predictions):
        """The loss of each class [batch, classes], before the sum over classes."""
        labels = tf.cast(labels, tf.float32)
        labels = labels * (1 - self.label_smoothing) + self.label_smoothing / 2
        cross_entropy = labels * tf.math.log(predictions + _EPSILON) + (
            1 - labels) * tf.math.log(1 - predictions + _EPSILON)
        return -cross_entropy


class HingeLoss(keras.losses.Loss):
    """Per-class hinge loss on probabilities mapped to [-1, 1], summed over classes."""

    def __init__(self, b: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.b = b

    def call(self, labels, predictions):
        return tf.reduce_sum(self.per_class(labels, predictions), axis=1)

    def per_class(self, labels, predictions):
        """The loss of each class [batch, classes], before the sum over classes."""
        signs = 2 * tf.cast(labels, tf.float32) - 1
        return tf.nn.relu(self.b - signs * predictions)


class SoftmaxLoss(keras.losses.Loss):
    """Cross-entropy between the label distribution and a softmax over the predictions."""

    def call(self, labels, predictions):
        labels = tf.cast(labels, tf.float32)
        label_distribution = labels / tf.maximum(
            tf.reduce_sum(labels, axis=1, keepdims=True), 1e-7)
        log_softmax = tf.nn.log_softmax(predictions, axis=1)
        return -tf.reduce_sum(label_distribution * log_softmax, axis=1)


class MaskedLoss(keras.losses.Loss):
    """A per-class loss over the rated classes only (segment training): the targets are
    [batch, 2, classes], the rated scores and `label_weights` (1 where rated, see
    reader.segment_targets); each class's loss is multiplied by its weight before the sum,
    so unrated classes add nothing and have no gradient. The starter code reads these
    weights but trains without them (google/youtube-8m#99)."""

    def __init__(self, loss: keras.losses.Loss, **kwargs):
        super().__init__(**kwargs)
        self.loss = loss

    def call(self, targets, predictions):
        labels, label_weights = targets[:, 0], targets[:, 1]
        return tf.reduce_sum(self.loss.per_class(labels, predictions) * label_weights, axis=1)


LOSSES = {cls.__name__: cls for cls in (CrossEntropyLoss, HingeLoss, SoftmaxLoss)}


def get_loss(name: str, label_smoothing: float = 0.0,
             masked: bool = False) -> keras.losses.Loss:
    """The loss registered under `name` (the starter code's `--label_loss`); `masked`: over
    the rated classes only (MaskedLoss)."""
    if name not in LOSSES:
        raise ValueError(f"unknown --label_loss {name!r}; choose one of {', '.join(LOSSES)}")
    if label_smoothing and name != CrossEntropyLoss.__name__:
        raise ValueError(f"--label_smoothing needs --label_loss=CrossEntropyLoss, not {name}")
    loss = (CrossEntropyLoss(label_smoothing=label_smoothing) if label_smoothing
            else LOSSES[name]())
    if not masked:
        return loss
    if not hasattr(loss, "per_class"):
        raise ValueError(f"--segment_labels trains with a per-class loss (CrossEntropyLoss or "
                         f"HingeLoss); {name} is a softmax over all classes")
    return MaskedLoss(loss)
