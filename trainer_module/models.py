"""Model zoo: the starter code's models as small classes, selected by name with `--model`.

Each model maps the concatenated input features to per-class probabilities in [0, 1].
Hyperparameter names and defaults are the starter code's flags.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from trainer_module.features import DEFAULT_MAX_FRAMES, NUM_FRAMES_KEY, FeatureSpec


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


class MoeModel:
    """Mixture of logistic experts per class, gated by a softmax over experts plus a dummy."""

    def __init__(self, moe_num_mixtures: int = 2, l2_penalty: float = 1e-8, **unused_hparams):
        self.num_mixtures = moe_num_mixtures
        self.l2_penalty = l2_penalty

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
        return keras.ops.sum(gating[:, :, :m] * expert_probabilities, axis=-1)


VIDEO_LEVEL_MODELS = {cls.__name__: cls for cls in (LogisticModel, MoeModel)}


def _video_level_classifier(name: str, hparams: dict):
    if name not in VIDEO_LEVEL_MODELS:
        raise ValueError(f"unknown --video_level_classifier_model {name!r}; choose one of "
                         f"{', '.join(VIDEO_LEVEL_MODELS)}")
    return VIDEO_LEVEL_MODELS[name](**hparams)


class FrameMeanPooling(keras.layers.Layer):
    """Mean over each video's real frames (padding excluded)."""

    def call(self, frames, num_frames):
        mask = tf.sequence_mask(num_frames, tf.shape(frames)[1], dtype=frames.dtype)
        total = tf.reduce_sum(frames * mask[:, :, None], axis=1)
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


class DbofModel:
    """Deep Bag of Frames: frames projected onto `dbof_cluster_size` units, max-pooled over
    time, a hidden layer, then a video-level classifier."""

    def __init__(self, dbof_cluster_size: int = 8192, dbof_hidden_size: int = 1024,
                 iterations: int = 30, sample_random_frames: bool = True,
                 dbof_add_batch_norm: bool = True, dbof_pooling_method: str = "max",
                 video_level_classifier_model: str = "MoeModel", **hparams):
        self.cluster_size = dbof_cluster_size
        self.hidden_size = dbof_hidden_size
        self.iterations = iterations
        self.sample_random_frames = sample_random_frames
        self.add_batch_norm = dbof_add_batch_norm
        if dbof_pooling_method not in ("max", "average"):
            raise ValueError(f"unknown dbof_pooling_method {dbof_pooling_method!r}")
        self.pooling = dbof_pooling_method
        self.classifier = _video_level_classifier(video_level_classifier_model, hparams)

    def _normalise(self, x, name):
        return keras.layers.BatchNormalization(name=name)(x) if self.add_batch_norm else x

    def __call__(self, frames, num_frames, vocab_size: int):
        if self.sample_random_frames:
            frames, num_frames = RandomFrameSampler(self.iterations)(frames, num_frames)
        frames = self._normalise(frames, "input_bn")
        clusters = keras.layers.Dense(self.cluster_size, use_bias=not self.add_batch_norm,
                                      name="cluster")(frames)
        clusters = keras.layers.Activation("relu6")(self._normalise(clusters, "cluster_bn"))
        pool = FrameMaxPooling() if self.pooling == "max" else FrameMeanPooling()
        pooled = pool(clusters, num_frames)
        hidden = keras.layers.Dense(self.hidden_size, use_bias=not self.add_batch_norm,
                                    name="hidden")(pooled)
        hidden = keras.layers.Activation("relu6")(self._normalise(hidden, "hidden_bn"))
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
    FrameLevelLogisticModel, DbofModel, LstmModel, GruModel)}
MODELS = {**VIDEO_LEVEL_MODELS, **FRAME_LEVEL_MODELS}


def get_model_class(name: str):
    """The model class registered under `name`; raises ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown --model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, spec: FeatureSpec, num_classes: int,
                max_frames: int = DEFAULT_MAX_FRAMES, **hparams) -> keras.Model:
    """A Keras model taking a dict of named features and returning class probabilities."""
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
    frame_axis = (max_frames,) if spec.is_frame_level else ()
    inputs = {n: keras.Input(shape=(*frame_axis, size), name=n) for n, size in spec.items()}
    parts = [inputs[n] for n in spec.names]
    model_input = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
    model = model_class(**hparams)
    if spec.is_frame_level:
        inputs[NUM_FRAMES_KEY] = keras.Input(shape=(), dtype="int32", name=NUM_FRAMES_KEY)
        predictions = model(model_input, inputs[NUM_FRAMES_KEY], num_classes)
    else:
        predictions = model(model_input, num_classes)
    return keras.Model(inputs=inputs, outputs=predictions, name=name)
