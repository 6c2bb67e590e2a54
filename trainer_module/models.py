"""The model zoo by name (`--model`): the registry of video- and frame-level models, their
hyperparameters as each model declares them (its `Hparams`), the averaging ensemble and
`build_model`.

Each model maps the input features to per-class probabilities in [0, 1].
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import tensorflow as tf

from trainer_module.features import NUM_FRAMES_KEY, FeatureSpec
from trainer_module.frame_level_models import FRAME_LEVEL_MODELS
from trainer_module.hparams import Hyperparameters, field_types, hyperparameters, positive, setting
from trainer_module.layers import DequantizedFrames
from trainer_module.video_level_models import VIDEO_LEVEL_MODELS, ClassifiedHparams

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


@hyperparameters
class BuildHparams(Hyperparameters):
    """What every model takes, whatever its architecture."""

    ensemble_size: int = setting(
        1, "with more than 1, an AveragingEnsemble of that many such models", positive)
    l2_normalize_input: bool = setting(
        True, "scale the concatenated input features to unit L2 norm (each video at video "
              "level, each frame at frame level; padding frames stay zero) before the model "
              "sees them, as the starter code's train, eval and export do")


def _classifier_of(hparams: Hyperparameters) -> str | None:
    return hparams.video_level_classifier_model if isinstance(
        hparams, ClassifiedHparams) else None


def _classifier_values(hparams: Hyperparameters, values: Mapping[str, Any]) -> dict[str, Any]:
    """What a model's classifier is built with: the given values and the model's own (its
    defaults where both declare a name, e.g. MlpMoeModel's moe_prob_gating), but not the
    model's choice of classifier (a classifier's own classifier keeps its default)."""
    merged = {**values, **dataclasses.asdict(hparams)}
    return {key: value for key, value in merged.items() if key != CLASSIFIER_HPARAM}


def _hparams_chain(name: str, values: Mapping[str, Any],
                   with_classifier: bool = True) -> list[tuple[str, Hyperparameters]]:
    """`--model name`'s hyperparameters with `values`, then (`with_classifier`) those of its
    video-level classifier (the one `values` choose, else its default), and so on down;
    raises ValueError for an unknown model, classifier or value."""
    hparams = get_model_class(name).Hparams.of(values)
    classifier = _classifier_of(hparams)
    if not with_classifier or classifier is None:
        return [(name, hparams)]
    return [(name, hparams), *_hparams_chain(classifier, _classifier_values(hparams, values))]


def declared_hyperparameters(name: str, values: Mapping[str, Any] | None = None,
                             with_classifier: bool = True) -> dict[str, dataclasses.Field]:
    """The declared hyperparameters `--model name` takes, by flag name: its own and
    (`with_classifier`) its classifier's, the model's declaration where both declare one."""
    declared: dict[str, dataclasses.Field] = {}
    for _, hparams in reversed(_hparams_chain(name, values or {}, with_classifier)):
        declared.update({field.name: field for field in dataclasses.fields(hparams)})
    return declared


def model_hyperparameters(name: str, values: Mapping[str, Any] | None = None,
                          with_classifier: bool = True) -> dict[str, Any]:
    """Every hyperparameter `--model name` takes (as `declared_hyperparameters`), with the
    value `values` give it, else its default."""
    resolved: dict[str, Any] = {}
    for _, hparams in reversed(_hparams_chain(name, values or {}, with_classifier)):
        resolved.update(dataclasses.asdict(hparams))
    return resolved


def _instantiate(name: str, values: Mapping[str, Any]):
    """The model object `--model name` with `values`, each classifier built before the
    model that ends in it."""
    model = None
    for model_name, hparams in reversed(_hparams_chain(name, values)):
        model_class = get_model_class(model_name)
        model = model_class(hparams) if model is None else model_class(hparams, model)
    return model


def hyperparameter_flags() -> dict[str, tuple[type, str]]:
    """Each model hyperparameter of the registered models, and BuildHparams', by flag name:
    its type and its help, with its default in each model that declares it. Raises TypeError
    where two models declare one name with different types or help."""
    declared: dict[str, list[tuple[str, type, dataclasses.Field]]] = {}
    for owner, hparams_class in [("", BuildHparams)] + [
            (name, model_class.Hparams) for name, model_class in MODELS.items()]:
        types = field_types(hparams_class)
        for field in dataclasses.fields(hparams_class):
            declared.setdefault(field.name, []).append((owner, types[field.name], field))
    flags = {}
    for flag, declarations in sorted(declared.items()):
        _, kind, first = declarations[0]
        if any((t, f.metadata["help"]) != (kind, first.metadata["help"])
               for _, t, f in declarations):
            raise TypeError(f"--{flag} is declared with different types or help; declare it "
                            "once and redefault() it")
        by_default: dict[str, list[str]] = {}
        for owner, _, field in declarations:
            by_default.setdefault(str(field.default), []).append(owner)
        defaults = "; ".join(f"{default} in {', '.join(owners)}" if any(owners) else default
                             for default, owners in by_default.items())
        flags[flag] = (kind, f"{first.metadata['help']} (default {defaults})")
    return flags


def check_hyperparameters(name: str, hparams: Mapping[str, Any]) -> None:
    """Raises ValueError naming any of `hparams` that `--model name` does not take, or a
    value of the wrong type or out of its range."""
    declared = declared_hyperparameters(name, hparams)
    unknown = sorted(set(hparams) - set(declared) - set(BuildHparams.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"--model {name} does not take {', '.join('--' + key for key in unknown)}; "
            f"it takes {', '.join('--' + key for key in sorted(declared))}")
    BuildHparams.of(hparams)


@contextlib.contextmanager
def mixed_precision_policy(mixed_precision: str) -> Iterator[None]:
    """Within the block, layers built compute in `mixed_precision` (float16 or bfloat16) with
    float32 weights (Keras' mixed policy, which a layer takes when built); "none": float32.
    The models' scores stay float32 either way."""
    previous = keras.config.dtype_policy()
    if mixed_precision != "none":
        keras.config.set_dtype_policy(f"mixed_{mixed_precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_model(name: str, spec: FeatureSpec, num_classes: int,
                hparams: Mapping[str, Any] | None = None) -> keras.Model:
    """A Keras model taking a dict of named features and returning class probabilities,
    built with `hparams` by flag name (the model's, its classifier's and BuildHparams'; unset
    ones keep their defaults). Raises ValueError for a hyperparameter the model and its
    classifier do not take, or a value out of its range."""
    hparams = dict(hparams or {})
    check_hyperparameters(name, hparams)
    build = BuildHparams.of(hparams)
    model_values = {key: value for key, value in hparams.items()
                    if key not in BuildHparams.__dataclass_fields__}
    if build.ensemble_size > 1:
        members = [_build_single_model(name, spec, num_classes, f"{name}_member{index}",
                                       build.l2_normalize_input, model_values)
                   for index in range(build.ensemble_size)]
        return AveragingEnsemble(members, name=f"{name}_ensemble")
    return _build_single_model(name, spec, num_classes, name, build.l2_normalize_input,
                               model_values)


def _build_single_model(name: str, spec: FeatureSpec, num_classes: int, keras_name: str,
                        l2_normalize_input: bool, hparams: dict) -> keras.Model:
    features = ",".join(spec.names)
    if spec.is_frame_level and name in VIDEO_LEVEL_MODELS:
        raise ValueError(
            f"--model {name} is video-level but --feature_names {features} are frame-level "
            "features; use mean_rgb,mean_audio or a frame-level model")
    if not spec.is_frame_level and name in FRAME_LEVEL_MODELS:
        raise ValueError(
            f"--model {name} is frame-level but --feature_names {features} are video-level "
            "features; use --feature_names=rgb,audio or a video-level model")
    if spec.is_frame_level:
        # uint8 codes padded to the batch's longest video: the time axis is not fixed.
        inputs = {n: keras.Input(shape=(None, size), dtype="uint8", name=n)
                  for n, size in spec.items()}
        inputs[NUM_FRAMES_KEY] = keras.Input(shape=(), dtype="int32", name=NUM_FRAMES_KEY)
        parts = [DequantizedFrames(name=f"{n}_dequantized")(inputs[n], inputs[NUM_FRAMES_KEY])
                 for n in spec.names]
    else:
        inputs = {n: keras.Input(shape=(size,), name=n) for n, size in spec.items()}
        parts = [inputs[n] for n in spec.names]
    model_input = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
    if l2_normalize_input:
        # The starter's tf.nn.l2_normalize(model_input_raw, feature_dim): along the last axis.
        model_input = keras.layers.UnitNormalization(axis=-1, name="input_l2_normalize")(
            model_input)
    model = _instantiate(name, hparams)
    if spec.is_frame_level:
        predictions = model(model_input, inputs[NUM_FRAMES_KEY], num_classes)
    else:
        predictions = model(model_input, num_classes)
    if predictions.dtype != "float32":  # mixed precision: the scores in float32
        predictions = keras.layers.Activation("linear", dtype="float32")(predictions)
    return keras.Model(inputs=inputs, outputs=predictions, name=keras_name)
