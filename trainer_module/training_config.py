"""Training hyperparameters: the starter code's flags, defaults and names, in one dataclass.

The pipeline passes this (as a dict) through TFX `custom_config` to Transform and Trainer,
and the Trainer records it next to the exported model.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from contract.saved_model import TOP_K
from trainer_module.features import DEFAULT_MAX_FRAMES, NUM_CLASSES_2018, FeatureSpec
from trainer_module.hparams import (
    check_values,
    fraction,
    not_negative,
    one_of,
    positive,
    setting,
    weight,
)
from trainer_module.segments import SEGMENT_MAX_PRED, SEGMENT_SIZE

CONFIG_FILENAME = "training_config.json"  # written next to checkpoints and exported models
DISTRIBUTION_STRATEGIES = ("none", "mirrored", "multi_worker_mirrored")
MIXED_PRECISIONS = ("none", "float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides what is trained and how; names and defaults are the starter
    code's flags (pipeline/flags.py generates the flags from these fields)."""

    model: str = setting("LogisticModel", flag=False)  # its own flag: checked by the registry
    feature_names: str = setting("mean_rgb,mean_audio", flag=False)
    feature_sizes: str = setting("1024,128", flag=False)
    num_classes: int = setting(NUM_CLASSES_2018, check=positive, flag=False)
    # The starter code's is 1024; 256 gives the bundled sample enough steps on a laptop CPU.
    batch_size: int = setting(256, "videos per training step", positive)
    base_learning_rate: float = setting(0.01, "Adam's initial learning rate", positive,
                                        search=(0.001, 0.003, 0.01, 0.03))
    learning_rate_decay: float = setting(0.95, "learning rate factor per decay period",
                                         positive)
    learning_rate_decay_examples: int = setting(
        4_000_000, "examples per staircase decay of the learning rate", positive)
    clip_gradient_norm: float = setting(1.0, "per-variable gradient norm clip (0: off)",
                                        not_negative)
    regularization_penalty: float = setting(1.0, "weight of the models' L2 losses",
                                            not_negative, search=(0.1, 1.0, 10.0))
    label_loss: str = setting("CrossEntropyLoss", "CrossEntropyLoss, HingeLoss or SoftmaxLoss")
    label_smoothing: float = setting(
        0.0, "CrossEntropyLoss targets become s/2 and 1 - s/2 (0: off)", fraction)
    top_k: int = setting(TOP_K, "k of GAP@k and of the exported top_k_* outputs", positive)
    max_frames: int = setting(DEFAULT_MAX_FRAMES, "frame-level only: frames kept per video",
                              positive)
    segment_labels: bool = setting(
        False, "segment-rated frame-level data (2019): train on the rated segments with the "
               "loss over the rated classes only, evaluate segment MAP@--segment_max_pred")
    segment_size: int = setting(SEGMENT_SIZE, "frames per segment (--segment_labels; the "
                                              "serving_segments signature)", positive)
    segment_max_pred: int = setting(
        SEGMENT_MAX_PRED, "segments ranked per class: K of segment MAP@K and of the "
                          "segment submission", positive)
    warm_start_from: str = setting(
        "", "start from the weights of this exported model of the same architecture (e.g. "
            "a frame model trained on whole videos, to fine-tune on --segment_labels), when "
            "no checkpoint is resumed")
    seed: int = setting(0, "seed of initialisation, shuffling and dropout")
    train_dir: str = setting(
        "", "checkpoint folder; a rerun resumes from its latest checkpoint "
            "(default: <pipeline_root>/train_dir/<model>)", flag=False)
    checkpoint_steps: int = setting(500, "save a checkpoint every this many steps", positive)
    eval_every_steps: int = setting(
        0, "validation GAP every this many steps; the exported model keeps the best "
           "evaluation's weights (0: evaluate only at the end)", not_negative)
    early_stopping_patience: int = setting(
        0, "with --eval_every_steps, stop after this many evaluations without a better "
           "validation GAP (0: never stop early)", not_negative)
    ema_momentum: float = setting(
        0.0, "keep an exponential moving average of the weights with this momentum (e.g. "
             "0.99), used for validation and export (0: off)", fraction)
    neighbour_weight: float = setting(
        0.0, "blend the model's scores with the labels of the --neighbours most similar "
             "training videos, with this weight (0: off; the training set's features are "
             "then stored in the model)", weight)
    neighbours: int = setting(30, "how many training videos --neighbour_weight blends",
                              positive)
    start_new_model: bool = setting(
        False, "discard the checkpoints in --train_dir and train from scratch")
    distribution: str = setting(
        "none", "tf.distribute strategy: mirrored (GPUs of one machine), "
                "multi_worker_mirrored (several machines, from TF_CONFIG)",
        one_of(*DISTRIBUTION_STRATEGIES))
    mixed_precision: str = setting(
        "none", "compute in float16 or bfloat16 with float32 weights (Keras mixed precision; "
                "loss scaling for float16); the scores, the loss and the exported signatures "
                "stay float32", one_of(*MIXED_PRECISIONS))
    jit_compile: bool = setting(
        True, "XLA-compile the training step of video-level models on one device (their "
              "batches never change shape); frame-level models, whose frame axis changes "
              "with each batch, and tf.distribute strategies train without it")
    num_gpu: int = setting(
        0, "the starter's: train on up to this many of the machine's GPUs, one replica each "
           "(mirrored), with --batch_size per GPU as its train.py has it; 0: --batch_size is "
           "the whole step's, over whatever devices --distribution uses", not_negative)
    require_gpus: int = setting(
        0, "stop before training unless TensorFlow sees at least this many GPUs (never a "
           "silent CPU run; kubeflow_runner --trainer_gpus sets it)", not_negative)
    # Model-specific hyperparameters (e.g. moe_num_mixtures), by starter flag name; each
    # model declares its own (its `Hparams`, read by trainer_module.models).
    model_hparams: dict[str, Any] = setting(flag=False, default_factory=dict)

    def __post_init__(self):
        check_values(self)
        if self.segment_labels and not self.feature_spec().is_frame_level:
            raise ValueError("--segment_labels needs frame-level features (--frame_features)")

    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_flags(self.feature_names, self.feature_sizes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_values(self, values: dict[str, Any]) -> TrainingConfig:
        """This config with `values` (e.g. the Tuner's): training fields by name, anything
        else as a model hyperparameter."""
        fields = {field.name for field in dataclasses.fields(self)}
        training = {key: value for key, value in values.items() if key in fields}
        model_hparams = {**self.model_hparams,
                         **{key: value for key, value in values.items() if key not in fields}}
        return dataclasses.replace(self, **training, model_hparams=model_hparams)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Builds a config, rejecting unknown keys so that a typo is not silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**values)
