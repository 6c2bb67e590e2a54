"""Video-level models (the starter code's `video_level_models.py`): each maps the video's
concatenated features to per-class probabilities. They also serve as the classifier head of
the frame-level models (`--video_level_classifier_model`). Hyperparameter names and
defaults are the starter code's flags, written once in each constructor.
"""

from __future__ import annotations

import keras

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


class LogisticModel:
    """One sigmoid unit per class over the video-level features.

    Args:
        l2_penalty: weight of the L2 penalty on the classifier's weights.
    """

    def __init__(self, l2_penalty: float = 1e-8, **unused_hparams):
        self.l2_penalty = l2_penalty

    def __call__(self, model_input, vocab_size: int):
        logits = keras.layers.Dense(vocab_size, kernel_regularizer=_l2(self.l2_penalty),
                                    name="logistic")(model_input)
        return float32_activation("sigmoid")(logits)


class MoeModel:
    """Mixture of logistic experts per class, gated by a softmax over experts plus a dummy.

    Args:
        moe_num_mixtures: experts per class, not counting the dummy that always predicts 0.
        l2_penalty: weight of the L2 penalty on the gates' and experts' weights.
        moe_prob_gating: Context Gating on the class probabilities.
        gating_remove_diag: Context Gating without each unit's gate on itself.
    """

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
        gating = float32_activation("softmax")(keras.layers.Reshape((vocab_size, m + 1))(gates))
        expert_probabilities = float32_activation("sigmoid")(
            keras.layers.Reshape((vocab_size, m))(experts))
        # The last gate is the "dummy" expert that always predicts 0.
        probabilities = keras.ops.sum(gating[:, :, :m] * expert_probabilities, axis=-1)
        if self.prob_gating:
            probabilities = ContextGating(remove_diag=self.gating_remove_diag,
                                          name="probability_gating")(probabilities)
        return probabilities


class MlpModel:
    """Batch-normalised features (with input dropout) → a ReLU hidden layer with dropout and
    Context Gating → a video-level classifier.

    Args:
        mlp_hidden_size: units of the hidden layer.
        mlp_dropout: dropout rate after the hidden layer.
        mlp_input_dropout: dropout rate on the input features.
        gating: Context Gating on the hidden layer.
        video_level_classifier_model: the video-level model that classifies the hidden layer.
    """

    def __init__(self, mlp_hidden_size: int = 2048, mlp_dropout: float = 0.5,
                 mlp_input_dropout: float = 0.0, gating: bool = True,
                 video_level_classifier_model: str = "LogisticModel", **hparams):
        self.hidden_size = mlp_hidden_size
        self.dropout = mlp_dropout
        self.input_dropout = mlp_input_dropout
        self.gating = gating
        self.classifier = video_level_classifier(video_level_classifier_model, hparams)

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


def video_level_classifier(name: str, hparams: dict):
    """The video-level model `name` built with `hparams`, as a classifier head."""
    if name not in VIDEO_LEVEL_MODELS:
        raise ValueError(f"unknown --video_level_classifier_model {name!r}; choose one of "
                         f"{', '.join(VIDEO_LEVEL_MODELS)}")
    return VIDEO_LEVEL_MODELS[name](**hparams)
