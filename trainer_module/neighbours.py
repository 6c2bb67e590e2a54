"""Nearest-neighbour votes: class scores from the training videos most similar to a video.

With few training videos per class, what the nearest training videos are labelled with is
evidence a trained classifier only partly captures; blending the two is better than either
(docs/experiments.md). The training set's features and labels travel inside the exported
model, so this is for training sets of up to MAX_REFERENCE_VIDEOS videos.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

MAX_REFERENCE_VIDEOS = 200_000  # ~0.9 GB of video-level features in the SavedModel


class NeighbourVotes(keras.layers.Layer):
    """Scores [batch, classes]: the labels of the `k` most similar reference videos, each
    weighted by its cosine similarity (of standardised features) to the power `power`."""

    def __init__(self, features: np.ndarray, labels: list[np.ndarray], num_classes: int,
                 k: int = 30, power: float = 4.0, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if len(features) < k:
            raise ValueError(f"nearest-neighbour votes need at least k={k} training videos, "
                             f"got {len(features)}")
        self.num_classes = num_classes
        self.k = k
        self.power = power
        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
        self.mean = self._constant("mean", mean)
        self.std = self._constant("std", std)
        self.references = self._constant("references", _unit_rows((features - mean) / std))
        self.label_ids = self._constant("label_ids", np.concatenate(labels).astype(np.int64))
        self.label_row_splits = self._constant(
            "label_row_splits", np.cumsum([0, *map(len, labels)]).astype(np.int64))

    def _constant(self, name: str, value: np.ndarray):
        # Weights, not graph constants: they are stored as SavedModel variables.
        weight = self.add_weight(name=name, shape=value.shape, dtype=value.dtype.name,
                                 initializer="zeros", trainable=False)
        weight.assign(value)
        return weight

    def call(self, features):
        queries = tf.math.l2_normalize((features - self.mean) / self.std, axis=1)
        similarity = tf.matmul(queries, self.references, transpose_b=True)
        nearest = tf.math.top_k(similarity, k=self.k)
        weights = tf.nn.relu(nearest.values) ** self.power  # [batch, k]
        weights /= tf.reduce_sum(weights, axis=1, keepdims=True) + 1e-9
        labels = tf.RaggedTensor.from_row_splits(self.label_ids, self.label_row_splits)
        # Every (video, neighbour, label) triple adds the neighbour's weight to that label.
        votes = tf.gather(labels, nearest.indices).values  # [batch * k, labels]
        pair = votes.value_rowids()  # video * k + neighbour, per label
        video = pair // self.k
        scores = tf.math.unsorted_segment_sum(
            tf.gather(tf.reshape(weights, [-1]), pair),
            video * self.num_classes + votes.values,
            num_segments=tf.cast(tf.shape(features)[0], tf.int64) * self.num_classes)
        return tf.reshape(scores, [-1, self.num_classes])


class BlendWithNeighbours(keras.Model):
    """`(1 - weight) × model + weight × NeighbourVotes`, for evaluation and serving.

    `trained_model` stays the object that checkpoints and warm starts know.
    """

    def __init__(self, trained_model: keras.Model, votes: NeighbourVotes, weight: float,
                 feature_names: list[str], **kwargs):
        super().__init__(**kwargs)
        self.trained_model = trained_model
        self.votes = votes
        self.weight = weight
        self.feature_names = feature_names

    def call(self, inputs, training=None):
        scores = self.trained_model(inputs, training=training)
        features = tf.concat([inputs[name] for name in self.feature_names], axis=1)
        return (1 - self.weight) * scores + self.weight * self.votes(features)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(1e-9)).astype(np.float32)


def blend_with_neighbours(model: keras.Model, train_files: list[str], config) -> keras.Model:
    """`model` blended with the votes of its training videos (`config.neighbour_weight`,
    `config.neighbours`); `config` is the TrainingConfig."""
    from trainer_module.reader import make_dataset

    spec = config.feature_spec()
    if spec.is_frame_level:
        raise ValueError("--neighbour_weight needs video-level features (mean_rgb,mean_audio)")
    features, labels = [], []
    for batch, multi_hot in make_dataset(train_files, spec, config.num_classes, 1024):
        features.append(np.concatenate([batch[name].numpy() for name in spec.names], axis=1))
        labels.extend(np.flatnonzero(row) for row in multi_hot.numpy())
        if len(labels) > MAX_REFERENCE_VIDEOS:
            raise ValueError(
                f"--neighbour_weight keeps the training videos in the model; more than "
                f"{MAX_REFERENCE_VIDEOS} is too many (use --neighbour_weight=0)")
    votes = NeighbourVotes(np.concatenate(features), labels, config.num_classes,
                           k=config.neighbours, name="neighbour_votes")
    return BlendWithNeighbours(model, votes, config.neighbour_weight, list(spec.names),
                               name=f"{model.name}_with_neighbours")
