"""Keras layers of the model zoo: the frame models' dequantizing input, Context Gating, frame
pooling over each video's real frames (mean, max, DBoF, soft DBoF, NetVLAD, NetFV, NeXtVLAD),
random frame sampling and SE gating.

Frame layers take `frames` [batch, time, features] zero-padded to the batch's longest video
(`DequantizedFrames` makes them so) and `num_frames` [batch]; padding never reaches a result.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from trainer_module.frames import dequantize


class ContextGating(keras.layers.Layer):
    """`x * sigmoid(BN(x W))` (Miech et al. 2017): an input-dependent reweighting of the
    features that captures their dependencies, e.g. which classes co-occur."""

    def __init__(self, add_batch_norm: bool = True, remove_diag: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.add_batch_norm = add_batch_norm
        self.remove_diag = remove_diag

    def build(self, input_shape):
        size = input_shape[-1]
        self.kernel = self.add_weight(shape=(size, size), name="kernel",
                                      initializer=keras.initializers.RandomNormal(
                                          stddev=1 / size ** 0.5))
        if self.add_batch_norm:
            self.batch_norm = keras.layers.BatchNormalization()
        else:
            self.bias = self.add_weight(shape=(size,), name="bias", initializer="zeros")

    def call(self, inputs, training=None):
        kernel = self.kernel
        if self.remove_diag:
            # Only other features gate a feature, never the feature itself.
            kernel = kernel - tf.linalg.diag(tf.linalg.diag_part(kernel))
        gates = tf.matmul(inputs, kernel)
        gates = (self.batch_norm(gates, training=training) if self.add_batch_norm
                 else gates + self.bias)
        return inputs * tf.sigmoid(gates)


def _frame_mask(frames, num_frames):
    """[batch, frames, 1] with 1 on each video's real frames and 0 on padding."""
    return tf.sequence_mask(num_frames, tf.shape(frames)[1], dtype=frames.dtype)[:, :, None]


class DequantizedFrames(keras.layers.Layer):
    """The reader's uint8 frame codes [batch, time, size] → float32 features, zero past each
    video's `num_frames`: a frame model's first layer, so that frames cross the input
    pipeline (and the host-to-device copy) as the dataset's bytes."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float32", **kwargs)

    def call(self, codes, num_frames):
        frames = dequantize(codes)
        return frames * _frame_mask(frames, num_frames)


class FrameMeanPooling(keras.layers.Layer):
    """Mean over each video's real frames (padding excluded)."""

    def call(self, frames, num_frames):
        total = tf.reduce_sum(frames * _frame_mask(frames, num_frames), axis=1)
        return total / tf.maximum(tf.cast(num_frames, frames.dtype), 1.0)[:, None]


class FrameMaxPooling(keras.layers.Layer):
    """Max over each video's real frames (padding excluded)."""

    def call(self, frames, num_frames):
        mask = tf.sequence_mask(num_frames, tf.shape(frames)[1])
        return tf.reduce_max(tf.where(mask[:, :, None], frames, frames.dtype.min), axis=1)


class RandomFrameSampler(keras.layers.Layer):
    """In training, `num_samples` frames drawn uniformly (with replacement) from each video's
    real frames, as the starter code's SampleRandomFrames; at inference all frames pass."""

    def __init__(self, num_samples: int, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = num_samples

    def call(self, frames, num_frames, training=None):
        if not training:
            return frames, num_frames
        batch = tf.shape(frames)[0]
        uniform = tf.random.uniform([batch, self.num_samples])
        index = tf.cast(uniform * tf.cast(tf.maximum(num_frames, 1), tf.float32)[:, None],
                        tf.int32)
        sampled = tf.gather(frames, index, batch_dims=1)
        return sampled, tf.fill([batch], self.num_samples)


POOLING_METHODS = ("max", "average")


class BagOfFrames(keras.layers.Layer):
    """DBoF pooling: each frame projected onto `cluster_size` ReLU6 units, then max- or
    average-pooled over the real frames."""

    def __init__(self, cluster_size: int, pooling_method: str = "max",
                 add_batch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        if pooling_method not in POOLING_METHODS:
            raise ValueError(f"unknown pooling method {pooling_method!r}; choose one of "
                             f"{', '.join(POOLING_METHODS)}")
        self.projection = keras.layers.Dense(cluster_size, use_bias=not add_batch_norm)
        self.batch_norm = keras.layers.BatchNormalization() if add_batch_norm else None
        self.pool = FrameMaxPooling() if pooling_method == "max" else FrameMeanPooling()

    def call(self, frames, num_frames, training=None):
        clusters = self.projection(frames)
        if self.batch_norm is not None:
            clusters = self.batch_norm(clusters, training=training)
        return self.pool(tf.nn.relu6(clusters), num_frames)


class SoftAssignment(keras.layers.Layer):
    """Softmax assignment of each real frame to `cluster_size` clusters (padding gets 0)."""

    def __init__(self, cluster_size: int, add_batch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.logits = keras.layers.Dense(cluster_size, use_bias=not add_batch_norm)
        self.batch_norm = keras.layers.BatchNormalization() if add_batch_norm else None

    def call(self, frames, num_frames, training=None):
        logits = self.logits(frames)
        if self.batch_norm is not None:
            logits = self.batch_norm(logits, training=training)
        return tf.nn.softmax(logits) * _frame_mask(frames, num_frames)


def _intra_and_global_l2(descriptor):
    """[batch, features, clusters] → flat vector, L2-normalised per cluster then overall."""
    per_cluster = tf.math.l2_normalize(descriptor, axis=1)
    flat = tf.reshape(per_cluster, [-1, descriptor.shape[1] * descriptor.shape[2]])
    return tf.math.l2_normalize(flat, axis=1)


class SoftBagOfFrames(keras.layers.Layer):
    """Soft-DBoF pooling: soft cluster assignments summed over frames (and, with `max_pool`,
    also max-pooled), each L2-normalised."""

    def __init__(self, cluster_size: int, add_batch_norm: bool = True, max_pool: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.assignment = SoftAssignment(cluster_size, add_batch_norm, name="assignment")
        self.max_pool = max_pool

    def call(self, frames, num_frames, training=None):
        assignment = self.assignment(frames, num_frames, training=training)
        pooled = [tf.math.l2_normalize(tf.reduce_sum(assignment, axis=1), axis=1)]
        if self.max_pool:
            pooled.append(tf.math.l2_normalize(tf.reduce_max(assignment, axis=1), axis=1))
        return tf.concat(pooled, axis=1)


class NetVLAD(keras.layers.Layer):
    """NetVLAD (Arandjelovic et al. 2016): per cluster, the frames' residuals to a learnt
    centre summed with soft-assignment weights. `light` is NetRVLAD: no centres."""

    def __init__(self, cluster_size: int, add_batch_norm: bool = True, light: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.light = light
        self.assignment = SoftAssignment(cluster_size, add_batch_norm, name="assignment")

    def build(self, frames_shape, num_frames_shape=None):
        if not self.light:
            self.centers = self.add_weight(shape=(frames_shape[-1], self.cluster_size),
                                           initializer="glorot_uniform", name="centers")

    def call(self, frames, num_frames, training=None):
        assignment = self.assignment(frames, num_frames, training=training)
        vlad = tf.einsum("btk,btf->bfk", assignment, frames)
        if not self.light:
            vlad -= tf.reduce_sum(assignment, axis=1)[:, None, :] * self.centers
        return _intra_and_global_l2(vlad)


class NetFV(keras.layers.Layer):
    """NetFV (learnable Fisher Vector): first- and second-order statistics of the frames
    around `cluster_size` learnt Gaussians with diagonal variances, soft-assigned. With
    `couple_weights` the centres are `coupling_factor` times the assignment weights."""

    def __init__(self, cluster_size: int, add_batch_norm: bool = True,
                 couple_weights: bool = True, coupling_factor: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.couple_weights = couple_weights
        self.coupling_factor = coupling_factor
        self.assignment = SoftAssignment(cluster_size, add_batch_norm, name="assignment")

    def build(self, frames_shape, num_frames_shape=None):
        shape = (frames_shape[-1], self.cluster_size)
        self.sigma = self.add_weight(
            shape=shape, name="sigma",
            initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.1))
        if not self.couple_weights:
            self.centers = self.add_weight(shape=shape, initializer="glorot_uniform",
                                           name="centers")

    def call(self, frames, num_frames, training=None):
        assignment = self.assignment(frames, num_frames, training=training)
        weight = tf.reduce_sum(assignment, axis=1)[:, None, :]
        centers = (self.coupling_factor * self.assignment.logits.kernel if self.couple_weights
                   else self.centers)
        variance = tf.square(self.sigma) + 1e-6
        first = tf.einsum("btk,btf->bfk", assignment, frames)
        second = tf.einsum("btk,btf->bfk", assignment, tf.square(frames))
        first_order = (first - weight * centers) / variance
        second_order = ((second - 2 * first * centers + weight * tf.square(centers))
                        / tf.square(variance) - weight)
        return tf.concat([_intra_and_global_l2(first_order),
                          _intra_and_global_l2(second_order)], axis=1)


class NeXtVLAD(keras.layers.Layer):
    """NeXtVLAD (Lin et al. 2018): each frame is expanded `expansion` times and split into
    `groups` lower-dimensional vectors, each with its own attention weight; the vectors are
    soft-assigned to `cluster_size` centres shared by all groups and aggregated as in
    NetVLAD. The descriptor has expansion × features / groups × clusters values."""

    def __init__(self, cluster_size: int, expansion: int = 2, groups: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.expansion = expansion
        self.groups = groups

    def build(self, frames_shape, num_frames_shape=None):
        expanded = self.expansion * frames_shape[-1]
        if expanded % self.groups:
            raise ValueError(f"NeXtVLAD: expansion × features ({expanded}) must divide into "
                             f"{self.groups} groups")
        self.group_size = expanded // self.groups
        self.expand = keras.layers.Dense(expanded, name="expand")
        self.attention = keras.layers.Dense(self.groups, activation="sigmoid", name="attention")
        self.assign = keras.layers.Dense(self.groups * self.cluster_size, use_bias=False,
                                         name="assign")
        self.assign_bn = keras.layers.BatchNormalization(name="assign_bn")
        self.centers = self.add_weight(shape=(self.group_size, self.cluster_size),
                                       initializer="glorot_uniform", name="centers")

    def call(self, frames, num_frames, training=None):
        expanded = self.expand(frames)  # [batch, time, expansion × features]
        attention = self.attention(expanded) * _frame_mask(frames, num_frames)  # [b, t, g]
        logits = self.assign_bn(self.assign(expanded), training=training)
        shape = tf.shape(frames)
        logits = tf.reshape(logits, [shape[0], shape[1], self.groups, self.cluster_size])
        assignment = tf.nn.softmax(logits, axis=-1) * attention[..., None]  # [b, t, g, k]
        vectors = tf.reshape(expanded, [shape[0], shape[1], self.groups, self.group_size])
        vlad = tf.einsum("btgk,btgd->bdk", assignment, vectors)
        vlad -= tf.reduce_sum(assignment, axis=[1, 2])[:, None, :] * self.centers
        per_cluster = tf.math.l2_normalize(vlad, axis=1)
        return tf.reshape(per_cluster, [-1, self.group_size * self.cluster_size])


class SqueezeExcitationGating(keras.layers.Layer):
    """`x * sigmoid(W2 relu(W1 x))` with a bottleneck of size / `reduction` (the SE-style
    context gating of NeXtVLAD, cheaper than ContextGating's full size × size matrix)."""

    def __init__(self, reduction: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction

    def build(self, input_shape):
        size = input_shape[-1]
        self.squeeze = keras.layers.Dense(size // self.reduction, use_bias=False, name="squeeze")
        self.squeeze_bn = keras.layers.BatchNormalization(name="squeeze_bn")
        self.excite = keras.layers.Dense(size, use_bias=False, name="excite")
        self.excite_bn = keras.layers.BatchNormalization(name="excite_bn")

    def call(self, inputs, training=None):
        gates = tf.nn.relu(self.squeeze_bn(self.squeeze(inputs), training=training))
        gates = tf.sigmoid(self.excite_bn(self.excite(gates), training=training))
        return inputs * gates
