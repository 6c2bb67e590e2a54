"""Training hyperparameters: the starter code's flags, defaults and names, in one dataclass.

The pipeline passes this (as a dict) through TFX `custom_config` to Transform and Trainer,
and the Trainer records it next to the exported model.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from trainer_module.features import DEFAULT_MAX_FRAMES, NUM_CLASSES_2018, FeatureSpec

CONFIG_FILENAME = "training_config.json"  # written next to checkpoints and exported models
DISTRIBUTION_STRATEGIES = ("none", "mirrored", "multi_worker_mirrored")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides what is trained and how; defaults are the starter code's."""

    model: str = "LogisticModel"
    feature_names: str = "mean_rgb,mean_audio"
    feature_sizes: str = "1024,128"
    num_classes: int = NUM_CLASSES_2018
    batch_size: int = 1024
    base_learning_rate: float = 0.01
    learning_rate_decay: float = 0.95
    learning_rate_decay_examples: int = 4_000_000
    clip_gradient_norm: float = 1.0
    regularization_penalty: float = 1.0
    label_loss: str = "CrossEntropyLoss"
    label_smoothing: float = 0.0  # CrossEntropyLoss targets: 0 → s/2, 1 → 1 - s/2
    top_k: int = 20
    max_frames: int = DEFAULT_MAX_FRAMES  # frame-level only: frames kept per video
    seed: int = 0
    # Checkpoints: "" trains without any; a rerun with the same train_dir resumes.
    train_dir: str = ""
    checkpoint_steps: int = 500
    # Validation during training: GAP every `eval_every_steps` steps (0: only at the end); the
    # exported model has the best evaluation's weights. With a patience, training stops after
    # that many evaluations without a better GAP.
    eval_every_steps: int = 0
    early_stopping_patience: int = 0
    # Exponential moving average of the weights (0: off): validations score the averaged
    # weights and the model ends with them; training steps update the raw weights.
    ema_momentum: float = 0.0
    # Blend of the trained model's scores with its nearest training videos' labels (0: off).
    neighbour_weight: float = 0.0
    neighbours: int = 30
    start_new_model: bool = False
    distribution: str = "none"  # one of DISTRIBUTION_STRATEGIES
    # Model-specific hyperparameters (e.g. moe_num_mixtures, l2_penalty), by starter flag name.
    model_hparams: dict[str, Any] = dataclasses.field(default_factory=dict)

    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_flags(self.feature_names, self.feature_sizes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Builds a config, rejecting unknown keys so that a typo is not silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**values)
