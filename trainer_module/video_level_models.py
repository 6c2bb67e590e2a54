"""Video-level models (the starter code's `video_level_models.py`): each maps the video's
concatenated features to per-class probabilities. They also serve as the classifier head of
the frame-level models (`--video_level_classifier_model`). Hyperparameter names and
defaults are the starter code's flags, each declared once beside its model (`Hparams`).
"""

from __future__ import annotations

import keras

from trainer_module.hparams import (
    Hyperparameters,
    fraction,
    hyperparameters,
    not_negative,
    one_of,
    positive,
    redefault,
    setting,
)
from trainer_module.layers import ContextGating


def _l2(penalty: float) -> keras.regularizers.Regularizer:
    # The starter code's slim.l2_regularizer(scale) adds scale * sum(w**2) / 2.
    return keras.regularizers.L2(penalty / 2)


def float32_activation(name: str) -> keras.layers.Activation:
    """The activation that turns a classifier's logits into probabilities, in float32 under
    every dtype policy: with mixed precision the matmuls run in float16/bfloat16 while the
    scores, the loss and GAP stay float32 (keras.io, "Mixed precision": the model's last
    activation in float32)."""
    return keras.layers.Activation(name, dtype="float32")


@hyperparameters
class LogisticHparams(Hyperparameters):
    l2_penalty: float = setting(1e-8, "weight of the L2 penalty on the classifier's weights",
                                not_negative)


class LogisticModel:
    """One sigmoid unit per class over the video-level features."""

    Hparams = LogisticHparams

    def __init__(self, hparams: LogisticHparams):
        self.hparams = hparams

    def __call__(self, model_input, vocab_size: int):
        logits = keras.layers.Dense(vocab_size, kernel_regularizer=_l2(self.hparams.l2_penalty),
                                    name="logistic")(model_input)
        return float32_activation("sigmoid")(logits)


@hyperparameters
class MoeHparams(LogisticHparams):
    moe_num_mixtures: int = setting(
        2, "experts per class, not counting the dummy that always predicts 0", positive,
        search=(1, 2, 4))
    moe_prob_gating: bool = setting(False, "Context Gating on the class probabilities")
    gating_remove_diag: bool = setting(False, "Context Gating without each unit's gate on "
                                              "itself")


class MoeModel:
    """Mixture of logistic experts per class, gated by a softmax over experts plus a dummy."""

    Hparams = MoeHparams

    def __init__(self, hparams: MoeHparams):
        self.hparams = hparams

    def __call__(self, model_input, vocab_size: int):
        m, l2_penalty = self.hparams.moe_num_mixtures, self.hparams.l2_penalty
        gates = keras.layers.Dense(
            vocab_size * (m + 1), use_bias=False, kernel_regularizer=_l2(l2_penalty),
            name="gates")(model_input)
        experts = keras.layers.Dense(
            vocab_size * m, kernel_regularizer=_l2(l2_penalty), name="experts")(model_input)
        gating = float32_activation("softmax")(keras.layers.Reshape((vocab_size, m + 1))(gates))
        expert_probabilities = float32_activation("sigmoid")(
            keras.layers.Reshape((vocab_size, m))(experts))
        # The last gate is the "dummy" expert that always predicts 0.
        probabilities = keras.ops.sum(gating[:, :, :m] * expert_probabilities, axis=-1)
        if self.hparams.moe_prob_gating:
            probabilities = ContextGating(remove_diag=self.hparams.gating_remove_diag,
                                          name="probability_gating")(probabilities)
        return probabilities


@hyperparameters
class ClassifiedHparams(Hyperparameters):
    """Hyperparameters of a model that ends in a video-level classifier (whose own
    hyperparameters then apply too)."""

    video_level_classifier_model: str = setting(
        "MoeModel", "the video-level model that classifies the hidden layer",
        lambda name: one_of(*VIDEO_LEVEL_MODELS)(name))  # the registry below


@hyperparameters
class MlpHparams(ClassifiedHparams):
    video_level_classifier_model: str = redefault(
        ClassifiedHparams, "video_level_classifier_model", "LogisticModel")
    mlp_hidden_size: int = setting(2048, "units of the hidden layer", positive)
    mlp_dropout: float = setting(0.5, "dropout rate after the hidden layer", fraction)
    mlp_input_dropout: float = setting(0.0, "dropout rate on the input features", fraction)
    gating: bool = setting(True, "Context Gating on the hidden layer")


class MlpModel:
    """Batch-normalised features (with input dropout) → a ReLU hidden layer with dropout and
    Context Gating → a video-level classifier."""

    Hparams = MlpHparams

    def __init__(self, hparams: MlpHparams, classifier):
        self.hparams = hparams
        self.classifier = classifier

    def __call__(self, model_input, vocab_size: int):
        x = keras.layers.BatchNormalization(name="input_bn")(model_input)
        if self.hparams.mlp_input_dropout:
            x = keras.layers.Dropout(self.hparams.mlp_input_dropout, name="input_dropout")(x)
        x = keras.layers.Dense(self.hparams.mlp_hidden_size, use_bias=False, name="hidden")(x)
        x = keras.layers.Activation("relu")(keras.layers.BatchNormalization(name="hidden_bn")(x))
        x = keras.layers.Dropout(self.hparams.mlp_dropout)(x)
        if self.hparams.gating:
            x = ContextGating(name="hidden_gating")(x)
        return self.classifier(x, vocab_size)


@hyperparameters
class MlpMoeHparams(MlpHparams):
    video_level_classifier_model: str = redefault(
        ClassifiedHparams, "video_level_classifier_model", "MoeModel")
    moe_prob_gating: bool = redefault(MoeHparams, "moe_prob_gating", True)


class MlpMoeModel(MlpModel):
    """MlpModel with a MoE classifier that has Context Gating on its probabilities."""

    Hparams = MlpMoeHparams


VIDEO_LEVEL_MODELS = {cls.__name__: cls for cls in (
    LogisticModel, MoeModel, MlpModel, MlpMoeModel)}

