"""The model zoo by name (`--model`): the registry of video- and frame-level models, their
hyperparameters as their constructors declare them, the averaging ensemble and `build_model`.

Each model maps the input features to per-class probabilities in [0, 1].
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator

import keras
import tensorflow as tf

from trainer_module.features import NUM_FRAMES_KEY, FeatureSpec
from trainer_module.frame_level_models import FRAME_LEVEL_MODELS
from trainer_module.layers import DequantizedFrames
from trainer_module.video_level_models import VIDEO_LEVEL_MODELS

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


def model_hyperparameters(name: str, hparams: dict | None = None,
                          with_classifier: bool = True) -> dict:
    """Every hyperparameter `--model name` takes, with its default: the model's own and
    (`with_classifier`) those of its video-level classifier (the one `hparams` choose, else
    its default)."""
    params = {key: param.default
              for key, param in _constructor_defaults(get_model_class(name)).items()}
    if with_classifier and CLASSIFIER_HPARAM in params:
        classifier = (hparams or {}).get(CLASSIFIER_HPARAM, params[CLASSIFIER_HPARAM])
        if classifier not in VIDEO_LEVEL_MODELS:
            raise ValueError(f"unknown --{CLASSIFIER_HPARAM} {classifier!r}; choose one of "
                             f"{', '.join(VIDEO_LEVEL_MODELS)}")
        params = {**model_hyperparameters(classifier), **params}
    return params


def _build_options() -> dict[str, inspect.Parameter]:
    """`build_model`'s own hyperparameters (those with a default), which every model takes."""
    return {name: param for name, param in inspect.signature(build_model).parameters.items()
            if param.default is not param.empty and param.kind is not param.VAR_KEYWORD}


def hyperparameter_types() -> dict[str, str]:
    """Every model hyperparameter of the registered models, and `build_model`'s own
    (ensemble_size, l2_normalize_input), with its annotated type ("int", "float", "bool" or
    "str")."""
    types = {name: param.annotation for name, param in _build_options().items()}
    for model_class in MODELS.values():
        types.update({key: param.annotation
                      for key, param in _constructor_defaults(model_class).items()})
    return types


def hyperparameter_help() -> dict[str, str]:
    """Every model hyperparameter's help: what it does (from the `Args:` section of the
    first docstring that describes it: the model class's, its bases', or `build_model`'s)
    and its default in each model that takes it."""
    described = _documented_args(build_model.__doc__)
    defaults: dict[str, dict[str, list[str]]] = {}
    for name, model_class in MODELS.items():
        for cls in model_class.__mro__:
            described = {**_documented_args(cls.__doc__), **described}
        for key, param in _constructor_defaults(model_class).items():
            defaults.setdefault(key, {}).setdefault(str(param.default), []).append(name)
    helps = {}
    for key in hyperparameter_types():
        by_default = "; ".join(f"{default} in {', '.join(models)}"
                               for default, models in defaults.get(key, {}).items())
        helps[key] = described.get(key, "").rstrip(".") + (
            f" (default {by_default})" if by_default else "")
    return helps


def _documented_args(docstring: str | None) -> dict[str, str]:
    """The `name: text` entries of a Google-style docstring's `Args:` section."""
    entries: dict[str, str] = {}
    lines = inspect.cleandoc(docstring or "").splitlines()
    if "Args:" not in lines:
        return entries
    name = None
    for line in lines[lines.index("Args:") + 1:]:
        entry = re.fullmatch(r" {4}(\w+): (.*)", line)
        if entry:
            name, entries[entry[1]] = entry[1], entry[2]
        elif name and line.startswith(" " * 8):
            entries[name] += " " + line.strip()
        else:
            break
    return entries


def check_hyperparameters(name: str, hparams: dict) -> None:
    """Raises ValueError naming any of `hparams` that `--model name` does not take."""
    accepted = model_hyperparameters(name, hparams)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(
            f"--model {name} does not take {', '.join('--' + key for key in unknown)}; "
            f"it takes {', '.join('--' + key for key in sorted(accepted))}")


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


def build_model(name: str, spec: FeatureSpec, num_classes: int, ensemble_size: int = 1,
                l2_normalize_input: bool = True, **hparams) -> keras.Model:
    """A Keras model taking a dict of named features and returning class probabilities.
    Raises ValueError for a hyperparameter the model and its classifier do not take.

    Args:
        ensemble_size: with more than 1, an AveragingEnsemble of that many such models.
        l2_normalize_input: scale the concatenated input features to unit L2 norm (each
            video at video level, each frame at frame level; padding frames stay zero)
            before the model sees them, as the starter code's train, eval and export do.
    """
    check_hyperparameters(name, hparams)
    if ensemble_size > 1:
        members = [_build_single_model(name, spec, num_classes, f"{name}_member{index}",
                                       l2_normalize_input, hparams)
                   for index in range(ensemble_size)]
        return AveragingEnsemble(members, name=f"{name}_ensemble")
    return _build_single_model(name, spec, num_classes, name, l2_normalize_input, hparams)


def _build_single_model(name: str, spec: FeatureSpec, num_classes: int, keras_name: str,
                        l2_normalize_input: bool, hparams: dict) -> keras.Model:
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
    model = model_class(**hparams)
    if spec.is_frame_level:
        predictions = model(model_input, inputs[NUM_FRAMES_KEY], num_classes)
    else:
        predictions = model(model_input, num_classes)
    if predictions.dtype != "float32":  # mixed precision: the scores in float32
        predictions = keras.layers.Activation("linear", dtype="float32")(predictions)
    return keras.Model(inputs=inputs, outputs=predictions, name=keras_name)
