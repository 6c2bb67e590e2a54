"""Command-line flags shared by the local and Kubeflow runners: the starter code's model and
training flags, and the blessing rule, turned into a TrainingConfig."""

from __future__ import annotations

import argparse

from pipeline.configs import PipelineConfig
from pipeline.preflight import PreflightError
from trainer_module.config import DISTRIBUTION_STRATEGIES, TrainingConfig
from trainer_module.features import FRAME_LEVEL_FEATURES, FeatureSpec, FeatureSpecError


def _bool_flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


MODEL_HPARAM_FLAGS = {
    "l2_penalty": float, "moe_num_mixtures": int, "moe_prob_gating": _bool_flag,
    "video_level_classifier_model": str, "iterations": int, "sample_random_frames": _bool_flag,
    "gating": _bool_flag, "gating_remove_diag": _bool_flag,
    "dbof_cluster_size": int, "dbof_hidden_size": int, "dbof_add_batch_norm": _bool_flag,
    "dbof_pooling_method": str, "softdbof_maxpool": _bool_flag,
    "netvlad_cluster_size": int, "netvlad_hidden_size": int,
    "netvlad_add_batch_norm": _bool_flag, "lightvlad": _bool_flag,
    "fv_cluster_size": int, "fv_hidden_size": int, "fv_add_batch_norm": _bool_flag,
    "fv_couple_weights": _bool_flag, "fv_coupling_factor": float,
    "nextvlad_cluster_size": int, "nextvlad_hidden_size": int, "expansion": int, "groups": int,
    "gating_reduction": int, "drop_rate": float,
    "lstm_cells": int, "lstm_layers": int, "mlp_hidden_size": int, "mlp_dropout": float,
    "mlp_input_dropout": float, "ensemble_size": int,
}


# Named sets of flag defaults (flags given explicitly still win). `best-video`: the best
# video-level configuration found on the 13,998-video shared sample (docs/experiments.md).
PRESETS = {
    "best-video": {"model": "MlpModel", "ensemble_size": 4, "mlp_hidden_size": 2048,
                   "mlp_input_dropout": 0.3, "mlp_dropout": 0.6, "batch_size": 256,
                   "base_learning_rate": 0.001, "learning_rate_decay_examples": 2_000_000,
                   "label_smoothing": 0.002, "ema_momentum": 0.99, "train_steps": 1650,
                   "eval_every_steps": 55, "early_stopping_patience": 3,
                   "neighbour_weight": 0.15, "neighbours": 30},
}


def parse_args_with_preset(parser: argparse.ArgumentParser, argv: list[str] | None,
                           flags_parser: argparse.ArgumentParser | None = None
                           ) -> argparse.Namespace:
    """Parses `argv`; a `--preset` supplies defaults that explicit flags override.
    `flags_parser` is the (sub)parser holding the training flags, if not `parser`."""
    known, _ = parser.parse_known_args(argv)
    if getattr(known, "preset", None):
        preset = PRESETS[known.preset]
        unknown = sorted(set(preset) - set(vars(known)))
        if unknown:
            parser.exit(2, f"error: --preset {known.preset} sets "
                           f"{', '.join('--' + key for key in unknown)}, which no flag takes\n")
        (flags_parser or parser).set_defaults(**preset)
    return parser.parse_args(argv)


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """The model, hyperparameter and training flag groups (starter code names and defaults)."""
    defaults, training = PipelineConfig(), TrainingConfig()
    model = parser.add_argument_group("model (starter code flags)")
    model.add_argument("--preset", choices=sorted(PRESETS),
                       help="a named configuration; explicit flags override its values")
    model.add_argument("--model", default=training.model)
    model.add_argument("--feature_names", default=training.feature_names)
    model.add_argument("--feature_sizes", default=training.feature_sizes)
    model.add_argument("--num_classes", type=int,
                       help=f"default: {training.num_classes} (2018 data); 4716 when the data "
                            "is the 2017 release's (detected from its video_id key)")
    model.add_argument("--label_loss", default=training.label_loss)
    model.add_argument("--label_smoothing", type=float, default=training.label_smoothing,
                       help="CrossEntropyLoss targets become s/2 and 1 - s/2 (0: off)")
    model.add_argument("--frame_features", action="store_true",
                       help="frame-level SequenceExamples (default features: rgb,audio)")
    model.add_argument("--max_frames", type=int, default=training.max_frames)
    hparams = parser.add_argument_group("model hyperparameters (starter code flags; "
                                        "unset ones keep the model's default)")
    for flag, kind in MODEL_HPARAM_FLAGS.items():
        hparams.add_argument(f"--{flag}", type=kind, default=None)
    train = parser.add_argument_group("training (starter code flags)")
    train.add_argument("--train_steps", type=int, default=defaults.train_steps)
    train.add_argument("--batch_size", type=int, default=256)
    train.add_argument("--base_learning_rate", type=float, default=training.base_learning_rate)
    train.add_argument("--learning_rate_decay", type=float,
                       default=training.learning_rate_decay)
    train.add_argument("--learning_rate_decay_examples", type=int,
                       default=training.learning_rate_decay_examples)
    train.add_argument("--clip_gradient_norm", type=float, default=training.clip_gradient_norm)
    train.add_argument("--regularization_penalty", type=float,
                       default=training.regularization_penalty)
    train.add_argument("--top_k", type=int, default=training.top_k)
    train.add_argument("--seed", type=int, default=training.seed)
    train.add_argument("--train_dir",
                       help="checkpoint folder; a rerun resumes from its latest checkpoint "
                            "(default: <pipeline_root>/train_dir/<model>)")
    train.add_argument("--start_new_model", action="store_true",
                       help="discard the checkpoints in --train_dir and train from scratch")
    train.add_argument("--checkpoint_steps", type=int, default=training.checkpoint_steps,
                       help="save a checkpoint every this many steps")
    train.add_argument("--eval_every_steps", type=int, default=training.eval_every_steps,
                       help="validation GAP every this many steps; the exported model keeps "
                            "the best evaluation's weights (0: evaluate only at the end)")
    train.add_argument("--early_stopping_patience", type=int,
                       default=training.early_stopping_patience,
                       help="with --eval_every_steps, stop after this many evaluations "
                            "without a better validation GAP (0: never stop early)")
    train.add_argument("--ema_momentum", type=float, default=training.ema_momentum,
                       help="keep an exponential moving average of the weights with this "
                            "momentum (e.g. 0.99), used for validation and export (0: off)")
    train.add_argument("--neighbour_weight", type=float, default=training.neighbour_weight,
                       help="blend the model's scores with the labels of the --neighbours "
                            "most similar training videos, with this weight (0: off; the "
                            "training set's features are then stored in the model)")
    train.add_argument("--neighbours", type=int, default=training.neighbours)
    train.add_argument("--distribution", choices=DISTRIBUTION_STRATEGIES,
                       default=training.distribution,
                       help="tf.distribute strategy: mirrored (GPUs of one machine), "
                            "multi_worker_mirrored (several machines, from TF_CONFIG)")
    train.add_argument("--warm_start", action="store_true",
                       help="start from the weights of the last blessed model (same "
                            "architecture), when no checkpoint is resumed")


def add_blessing_flags(parser: argparse.ArgumentParser) -> None:
    defaults = PipelineConfig()
    bless = parser.add_argument_group("blessing")
    bless.add_argument("--gap_floor", type=float, default=defaults.gap_floor,
                       help="a model is blessed only with validate GAP at least this")
    bless.add_argument("--max_gap_regression", type=float, default=defaults.max_gap_regression,
                       help="largest GAP drop vs the last blessed model that still blesses")


def training_config_from_args(args: argparse.Namespace, default_train_dir: str) -> TrainingConfig:
    """The TrainingConfig the flags describe; raises FeatureSpecError/PreflightError."""
    spec = FeatureSpec.from_flags(args.feature_names, args.feature_sizes)
    if args.frame_features and spec == TrainingConfig().feature_spec():
        spec = FeatureSpec.of(FRAME_LEVEL_FEATURES)  # the starter code's frame defaults
    if args.frame_features and not spec.is_frame_level:
        raise FeatureSpecError(
            f"--frame_features needs frame-level --feature_names ({','.join(FRAME_LEVEL_FEATURES)}"
            f"), got {','.join(spec.names)}")
    for flag in ("train_steps", "batch_size", "checkpoint_steps"):
        if getattr(args, flag) <= 0:
            raise PreflightError(f"--{flag} must be positive, got {getattr(args, flag)}")
    for flag in ("eval_every_steps", "early_stopping_patience"):
        if getattr(args, flag) < 0:
            raise PreflightError(f"--{flag} must be 0 or more, got {getattr(args, flag)}")
    if not 0 <= args.ema_momentum < 1:
        raise PreflightError(f"--ema_momentum must be in [0, 1), got {args.ema_momentum}")
    if not 0 <= args.label_smoothing < 1:
        raise PreflightError(f"--label_smoothing must be in [0, 1), got {args.label_smoothing}")
    if not 0 <= args.neighbour_weight <= 1 or args.neighbours <= 0:
        raise PreflightError("--neighbour_weight must be in [0, 1] and --neighbours positive, "
                             f"got {args.neighbour_weight} and {args.neighbours}")
    if args.neighbour_weight and spec.is_frame_level:
        raise PreflightError("--neighbour_weight needs video-level features (mean_rgb,mean_audio)")
    model_hparams = {flag: getattr(args, flag) for flag in MODEL_HPARAM_FLAGS
                     if getattr(args, flag) is not None}
    return TrainingConfig(
        model=args.model, **spec.to_dict(),
        num_classes=args.num_classes or TrainingConfig().num_classes,
        batch_size=args.batch_size, base_learning_rate=args.base_learning_rate,
        learning_rate_decay=args.learning_rate_decay,
        learning_rate_decay_examples=args.learning_rate_decay_examples,
        clip_gradient_norm=args.clip_gradient_norm,
        regularization_penalty=args.regularization_penalty, label_loss=args.label_loss,
        label_smoothing=args.label_smoothing,
        top_k=args.top_k, max_frames=args.max_frames, seed=args.seed,
        train_dir=args.train_dir or default_train_dir,
        checkpoint_steps=args.checkpoint_steps, start_new_model=args.start_new_model,
        eval_every_steps=args.eval_every_steps,
        early_stopping_patience=args.early_stopping_patience, ema_momentum=args.ema_momentum,
        neighbour_weight=args.neighbour_weight, neighbours=args.neighbours,
        distribution=args.distribution, model_hparams=model_hparams)
