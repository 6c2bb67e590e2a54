"""Model zoo: the starter code's models as small classes, selected by name with `--model`.

Each model maps the concatenated input features to per-class probabilities in [0, 1].
Hyperparameter names and defaults are the starter code's flags.
"""

from __future__ import annotations

import keras

from trainer_module.features import FeatureSpec


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
MODELS = {**VIDEO_LEVEL_MODELS}


def get_model_class(name: str):
    """The model class registered under `name`; raises ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown --model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, spec: FeatureSpec, num_classes: int, **hparams) -> keras.Model:
    """A Keras model taking a dict of named features and returning class probabilities."""
    model_class = get_model_class(name)
    if spec.is_frame_level and name in VIDEO_LEVEL_MODELS:
        raise ValueError(
            f"--model {name} is video-level but --feature_names {','.join(spec.names)} "
            "are frame-level features; use mean_rgb,mean_audio or a frame-level model")
    inputs = {n: keras.Input(shape=(size,), name=n) for n, size in spec.items()}
    features = [inputs[n] for n in spec.names]
    model_input = features[0] if len(features) == 1 else keras.layers.Concatenate()(features)
    predictions = model_class(**hparams)(model_input, num_classes)
    return keras.Model(inputs=inputs, outputs=predictions, name=name)
