"""Model zoo: the starter code's models as small classes, selected by name with `--model`.

Each model maps the concatenated input features to per-class probabilities in [0, 1].
Hyperparameter names and defaults are the starter code's flags.
"""

from __future__ import annotations

import inspect

import keras
import tensorflow as tf

from trainer_module.features import NUM_FRAMES_KEY, FeatureSpec


def _l2(penalty: float) -> keras.regularizers.Regularizer:
    # The starter code's slim.l2_regularizer(scale) adds scale * sum(w**2) / 2.
    return keras.regularizers.L2(penalty / 2)


class LogisticModel:
    """One sigmoid unit per class over the video-level features."""

    def __init__(self, l2_penalty: float = 1e-8, **unused_hparams):
        self.l2_penalty = l2_penalty

    def __call__(self, model_input, vocab_size: int):
        return keras.layers.Dense(
            vocab_size, activation="sigmoid", kernel_regularizer=_l2(self.l2_penalty),
            name="logistic")(model_input)


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


class MoeModel:
    """Mixture of logistic experts per class, gated by a softmax over experts plus a dummy;
    `moe_prob_gating` adds Context Gating on the class probabilities."""

    def __init__(self, moe_num_mixtures: int = 2, l2_penalty: float = 1e-8,
                 moe_prob_gating: bool = False, gating_remove_diag: bool = False,
                 **unused_hparams):
        self.num_mixtures = moe_num_mixtures
        self.l2_penalty = l2_penalty
        self.prob_gating = moe_prob_gating
        self.gating_remove_diag = gating_remove_diag

    def __call__(self, model_input, vocab_size: int):
        m = self.num_mixtures
        gates = keras.layers.Dense(
            vocab_size * (m + 1), use_bias=False, kernel_regularizer=_l2(self.l2_penalty),
            name="gates")(model_input)
        experts = keras.layers.Dense(
            vocab_size * m, kernel_regularizer=_l2(self.l2_penalty), name="experts")(model_input)
        gating = keras.layers.Softmax(axis=-1)(keras.layers.Reshape((vocab_size, m + 1))(gates))
        expert_probabilities = keras.activations.sigmoid(
            keras.layers.Reshape((vocab_size, m))(experts))
        # The last gate is the "dummy" expert that always predicts 0.
        probabilities = keras.ops.sum(gating[:, :, :m] * expert_probabilities, axis=-1)
        if self.prob_gating:
            probabilities = ContextGating(remove_diag=self.gating_remove_diag,
                                          name="probability_gating")(probabilities)
        return probabilities


class MlpModel:
    """Batch-normalised features (with input dropout) → a ReLU hidden layer with dropout and
    Context Gating → a video-level classifier (`video_level_classifier_model`)."""

    def __init__(self, mlp_hidden_size: int = 2048, mlp_dropout: float = 0.5,
                 mlp_input_dropout: float = 0.0, gating: bool = True,
                 video_level_classifier_model: str = "LogisticModel", **hparams):
        self.hidden_size = mlp_hidden_size
        self.dropout = mlp_dropout
        self.input_dropout = mlp_input_dropout
        self.gating = gating
        self.classifier = _video_level_classifier(video_level_classifier_model, hparams)

    def __call__(self, model_input, vocab_size: int):
        x = keras.layers.BatchNormalization(name="input_bn")(model_input)
        if self.input_dropout:
            x = keras.layers.Dropout(self.input_dropout, name="input_dropout")(x)
        x = keras.layers.Dense(self.hidden_size, use_bias=False, name="hidden")(x)
        x = keras.layers.Activation("relu")(keras.layers.BatchNormalization(name="hidden_bn")(x))
        x = keras.layers.Dropout(self.dropout)(x)
        if self.gating:
            x = ContextGating(name="hidden_gating")(x)
        return self.classifier(x, vocab_size)


class MlpMoeModel(MlpModel):
    """MlpModel with a MoE classifier that has Context Gating on its probabilities."""

    def __init__(self, video_level_classifier_model: str = "MoeModel",
                 moe_prob_gating: bool = True, **hparams):
        super().__init__(video_level_classifier_model=video_level_classifier_model,
                         moe_prob_gating=moe_prob_gating, **hparams)


VIDEO_LEVEL_MODELS = {cls.__name__: cls for cls in (
    LogisticModel, MoeModel, MlpModel, MlpMoeModel)}


def _video_level_classifier(name: str, hparams: dict):
    if name not in VIDEO_LEVEL_MODELS:
        raise ValueError(f"unknown --video_level_classifier_model {name!r}; choose one of "
                         f"{', '.join(VIDEO_LEVEL_MODELS)}")
    return VIDEO_LEVEL_MODELS[name](**hparams)


def _frame_mask(frames, num_frames):
    """[batch, frames, 1] with 1 on each video's real frames and 0 on padding."""
    return tf.sequence_mask(num_frames, tf.shape(frames)[1], dtype=frames.dtype)[:, :, None]


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


class FrameLevelLogisticModel:
    """Logistic regression on the mean of each video's frames."""

    def __init__(self, l2_penalty: float = 1e-8, **unused_hparams):
        self.l2_penalty = l2_penalty

    def __call__(self, frames, num_frames, vocab_size: int):
        pooled = FrameMeanPooling()(frames, num_frames)
        return LogisticModel(l2_penalty=self.l2_penalty)(pooled, vocab_size)


class BagOfFrames(keras.layers.Layer):
    """DBoF pooling: each frame projected onto `cluster_size` ReLU6 units, then max- or
    average-pooled over the real frames."""

    def __init__(self, cluster_size: int, pooling_method: str = "max",
                 add_batch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        if pooling_method not in ("max", "average"):
            raise ValueError(f"unknown dbof_pooling_method {pooling_method!r}; "
                             "choose max or average")
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


class _PooledFramesModel:
    """Frames (randomly sampled in training) → a pooling layer → hidden layer (BN, ReLU6)
    → optional Context Gating → video-level classifier. Subclasses choose the pooling."""

    def __init__(self, hidden_size: int, add_batch_norm: bool, iterations: int = 30,
                 sample_random_frames: bool = True, gating: bool = False,
                 gating_remove_diag: bool = False,
                 video_level_classifier_model: str = "MoeModel", **hparams):
        self.hidden_size = hidden_size
        self.add_batch_norm = add_batch_norm
        self.iterations = iterations
        self.sample_random_frames = sample_random_frames
        self.gating = gating
        self.gating_remove_diag = gating_remove_diag
        self.classifier = _video_level_classifier(video_level_classifier_model, hparams)

    def pooling_layer(self) -> keras.layers.Layer:
        raise NotImplementedError

    def __call__(self, frames, num_frames, vocab_size: int):
        if self.sample_random_frames:
            frames, num_frames = RandomFrameSampler(self.iterations)(frames, num_frames)
        if self.add_batch_norm:
            frames = keras.layers.BatchNormalization(name="input_bn")(frames)
        pooled = self.pooling_layer()(frames, num_frames)
        hidden = keras.layers.Dense(self.hidden_size, use_bias=not self.add_batch_norm,
                                    name="hidden")(pooled)
        if self.add_batch_norm:
            hidden = keras.layers.BatchNormalization(name="hidden_bn")(hidden)
        hidden = keras.layers.Activation("relu6")(hidden)
        if self.gating:
            hidden = ContextGating(self.add_batch_norm, self.gating_remove_diag,
                                   name="hidden_gating")(hidden)
        return self.classifier(hidden, vocab_size)


class DbofModel(_PooledFramesModel):
    """Deep Bag of Frames (the starter code's): frames projected onto `dbof_cluster_size`
    units and max-pooled over time, a hidden layer, then a video-level classifier."""

    def __init__(self, dbof_cluster_size: int = 8192, dbof_hidden_size: int = 1024,
                 dbof_add_batch_norm: bool = True, dbof_pooling_method: str = "max",
                 **hparams):
        super().__init__(dbof_hidden_size, dbof_add_batch_norm, **hparams)
        self.cluster_size = dbof_cluster_size
        self.pooling_method = dbof_pooling_method
        self.pooling_layer()  # rejects an unknown pooling method now, not at build time

    def pooling_layer(self) -> keras.layers.Layer:
        return BagOfFrames(self.cluster_size, self.pooling_method, self.add_batch_norm,
                           name="bag_of_frames")


class GatedDbofModel(DbofModel):
    """DbofModel with Context Gating on the hidden layer (Miech et al. 2017)."""

    def __init__(self, gating: bool = True, **hparams):
        super().__init__(gating=gating, **hparams)


class SoftDbofModel(_PooledFramesModel):
    """DBoF with soft (softmax) cluster assignment and sum pooling, Context Gated."""

    def __init__(self, dbof_cluster_size: int = 4096, dbof_hidden_size: int = 1024,
                 dbof_add_batch_norm: bool = True, softdbof_maxpool: bool = False,
                 gating: bool = True, **hparams):
        super().__init__(dbof_hidden_size, dbof_add_batch_norm, gating=gating, **hparams)
        self.cluster_size = dbof_cluster_size
        self.max_pool = softdbof_maxpool

    def pooling_layer(self) -> keras.layers.Layer:
        return SoftBagOfFrames(self.cluster_size, self.add_batch_norm, self.max_pool,
                               name="soft_bag_of_frames")


class NetVLADModel(_PooledFramesModel):
    """NetVLAD pooling, hidden layer and Context Gating: the YouTube-8M 2017 winning model
    (Miech et al. 2017). `lightvlad` switches to NetRVLAD."""

    def __init__(self, netvlad_cluster_size: int = 64, netvlad_hidden_size: int = 1024,
                 netvlad_add_batch_norm: bool = True, lightvlad: bool = False,
                 gating: bool = True, **hparams):
        super().__init__(netvlad_hidden_size, netvlad_add_batch_norm, gating=gating, **hparams)
        self.cluster_size = netvlad_cluster_size
        self.light = lightvlad

    def pooling_layer(self) -> keras.layers.Layer:
        return NetVLAD(self.cluster_size, self.add_batch_norm, self.light, name="netvlad")


class NetRVLADModel(NetVLADModel):
    """NetVLADModel without cluster centres ("light" NetRVLAD): fewer parameters, as good."""

    def __init__(self, lightvlad: bool = True, **hparams):
        super().__init__(lightvlad=lightvlad, **hparams)


class NetFVModel(_PooledFramesModel):
    """Learnable Fisher Vector pooling, hidden layer and Context Gating (Miech et al. 2017)."""

    def __init__(self, fv_cluster_size: int = 64, fv_hidden_size: int = 2048,
                 fv_add_batch_norm: bool = True, fv_couple_weights: bool = True,
                 fv_coupling_factor: float = 0.01, gating: bool = True, **hparams):
        super().__init__(fv_hidden_size, fv_add_batch_norm, gating=gating, **hparams)
        self.cluster_size = fv_cluster_size
        self.couple_weights = fv_couple_weights
        self.coupling_factor = fv_coupling_factor

    def pooling_layer(self) -> keras.layers.Layer:
        return NetFV(self.cluster_size, self.add_batch_norm, self.couple_weights,
                     self.coupling_factor, name="netfv")


class NeXtVLADModel:
    """NeXtVLAD (Lin et al., ECCV 2018 workshop; the best single model of the 2018 challenge):
    NeXtVLAD pooling, dropout, a hidden layer with batch normalization, SE context gating,
    then a video-level classifier. Defaults are the paper's; rgb and audio are pooled
    together, as this project's other pooling models do."""

    def __init__(self, nextvlad_cluster_size: int = 128, nextvlad_hidden_size: int = 2048,
                 expansion: int = 2, groups: int = 8, gating_reduction: int = 8,
                 drop_rate: float = 0.5, video_level_classifier_model: str = "MoeModel",
                 **hparams):
        self.cluster_size = nextvlad_cluster_size
        self.hidden_size = nextvlad_hidden_size
        self.expansion = expansion
        self.groups = groups
        self.gating_reduction = gating_reduction
        self.drop_rate = drop_rate
        self.classifier = _video_level_classifier(video_level_classifier_model, hparams)

    def __call__(self, frames, num_frames, vocab_size: int):
        pooled = NeXtVLAD(self.cluster_size, self.expansion, self.groups, name="nextvlad")(
            frames, num_frames)
        pooled = keras.layers.Dropout(self.drop_rate)(pooled)
        hidden = keras.layers.Dense(self.hidden_size, use_bias=False, name="hidden")(pooled)
        hidden = keras.layers.BatchNormalization(name="hidden_bn")(hidden)
        hidden = SqueezeExcitationGating(self.gating_reduction, name="se_gating")(hidden)
        return self.classifier(hidden, vocab_size)


class LstmModel:
    """Stacked LSTMs over the real frames; the last layer's final state feeds the classifier."""

    recurrent_layer = keras.layers.LSTM

    def __init__(self, lstm_cells: int = 1024, lstm_layers: int = 2,
                 video_level_classifier_model: str = "MoeModel", **hparams):
        self.cells = lstm_cells
        self.layers = lstm_layers
        self.classifier = _video_level_classifier(video_level_classifier_model, hparams)

    def __call__(self, frames, num_frames, vocab_size: int):
        mask = keras.layers.Lambda(
            lambda args: tf.sequence_mask(args[1], tf.shape(args[0])[1]))([frames, num_frames])
        outputs = frames
        for layer in range(self.layers):
            last = layer == self.layers - 1
            outputs = self.recurrent_layer(self.cells, return_sequences=not last)(
                outputs, mask=mask)
        return self.classifier(outputs, vocab_size)


class GruModel(LstmModel):
    """LstmModel with GRU cells (fewer parameters, often as accurate)."""

    recurrent_layer = keras.layers.GRU


FRAME_LEVEL_MODELS = {cls.__name__: cls for cls in (
    FrameLevelLogisticModel, DbofModel, GatedDbofModel, SoftDbofModel, NetVLADModel,
    NetRVLADModel, NetFVModel, NeXtVLADModel, LstmModel, GruModel)}
MODELS = {**VIDEO_LEVEL_MODELS, **FRAME_LEVEL_MODELS}


def get_model_class(name: str):
    """The model class registered under `name`; raises ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown --model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


class AveragingEnsemble(keras.Model):
    """Members of one architecture that predict their mean probability.

    Each member learns from its own loss, as if trained alone on the same batches; they differ
    by initialisation and dropout. One model, so checkpoints, warm starts and the export
    treat the ensemble like any other model.
    """

    def __init__(self, members: list[keras.Model], **kwargs):
        super().__init__(**kwargs)
        self.members = members

    def call(self, inputs, training=None):
        return keras.ops.mean(
            keras.ops.stack([member(inputs, training=training) for member in self.members]),
            axis=0)

    def train_step(self, data):
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            member_losses = [self.loss(labels, member(features, training=True))
                             for member in self.members]
            # The sum gives each member exactly the gradient of its own loss.
            total = tf.add_n(member_losses + self.losses)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables,
                                           strict=True))
        return {"loss": tf.add_n(member_losses) / len(member_losses)}


CLASSIFIER_HPARAM = "video_level_classifier_model"


def _constructor_defaults(model_class) -> dict[str, inspect.Parameter]:
    """The keyword hyperparameters a model class takes: its constructor's and, as each
    constructor passes the rest on, its base classes' (nearest first)."""
    params = {}
    for cls in model_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None or cls is object:
            continue
        for param in list(inspect.signature(init).parameters.values())[1:]:
            if param.kind is param.KEYWORD_ONLY or (
                    param.kind is param.POSITIONAL_OR_KEYWORD
                    and param.default is not param.empty):
                params.setdefault(param.name, param)
    return params


def model_hyperparameters(name: str, hparams: dict | None = None) -> dict:
    """Every hyperparameter `--model name` takes, with its default: the model's own and
    those of its video-level classifier (the one `hparams` choose, else its default)."""
    params = {key: param.default
              for key, param in _constructor_defaults(get_model_class(name)).items()}
    if CLASSIFIER_HPARAM in params:
        classifier = (hparams or {}).get(CLASSIFIER_HPARAM, params[CLASSIFIER_HPARAM])
        if classifier not in VIDEO_LEVEL_MODELS:
            raise ValueError(f"unknown --{CLASSIFIER_HPARAM} {classifier!r}; choose one of "
                             f"{', '.join(VIDEO_LEVEL_MODELS)}")
        params = {**model_hyperparameters(classifier), **params}
    return params


def check_hyperparameters(name: str, hparams: dict) -> None:
    """Raises ValueError naming any of `hparams` that `--model name` does not take."""
    accepted = model_hyperparameters(name, hparams)
    unknown = sorted(set(hparams) - set(accepted) - {"ensemble_size"})
    if unknown:
        raise ValueError(
            f"--model {name} does not take {', '.join('--' + key for key in unknown)}; "
            f"it takes {', '.join('--' + key for key in sorted(accepted))}")


def build_model(name: str, spec: FeatureSpec, num_classes: int, ensemble_size: int = 1,
                **hparams) -> keras.Model:
    """A Keras model taking a dict of named features and returning class probabilities;
    with `ensemble_size` > 1, an AveragingEnsemble of that many such models. Raises
    ValueError for a hyperparameter the model and its classifier do not take."""
    check_hyperparameters(name, hparams)
    if ensemble_size > 1:
        members = [_build_single_model(name, spec, num_classes, f"{name}_member{index}", hparams)
                   for index in range(ensemble_size)]
        return AveragingEnsemble(members, name=f"{name}_ensemble")
    return _build_single_model(name, spec, num_classes, name, hparams)


def _build_single_model(name: str, spec: FeatureSpec, num_classes: int, keras_name: str,
                        hparams: dict) -> keras.Model:
    model_class = get_model_class(name)
    features = ",".join(spec.names)
    if spec.is_frame_level and name in VIDEO_LEVEL_MODELS:
        raise ValueError(
            f"--model {name} is video-level but --feature_names {features} are frame-level "
            "features; use mean_rgb,mean_audio or a frame-level model")
    if not spec.is_frame_level and name in FRAME_LEVEL_MODELS:
        raise ValueError(
            f"--model {name} is frame-level but --feature_names {features} are video-level "
            "features; use --feature_names=rgb,audio or a video-level model")
    # Frame batches are padded to their longest video, so the time axis is not fixed.
    frame_axis = (None,) if spec.is_frame_level else ()
    inputs = {n: keras.Input(shape=(*frame_axis, size), name=n) for n, size in spec.items()}
    parts = [inputs[n] for n in spec.names]
    model_input = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
    model = model_class(**hparams)
    if spec.is_frame_level:
        inputs[NUM_FRAMES_KEY] = keras.Input(shape=(), dtype="int32", name=NUM_FRAMES_KEY)
        predictions = model(model_input, inputs[NUM_FRAMES_KEY], num_classes)
    else:
        predictions = model(model_input, num_classes)
    return keras.Model(inputs=inputs, outputs=predictions, name=keras_name)
