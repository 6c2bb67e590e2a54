"""Runs the pipeline on this machine with LocalDagRunner (`make run-local`).

Flags mirror the starter code's `train.py` where it has one:
    python -m pipeline.run_local --model=MoeModel --train_steps=500 \
        --train_data_pattern='data/train/*.tfrecord' --eval_data_pattern='data/validate/*.tfrecord'
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from pipeline import preflight
from pipeline.configs import EVAL_PATTERN, SAMPLE_DATA_ROOT, TRAIN_PATTERN, PipelineConfig
from trainer_module.config import TrainingConfig
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
    "lstm_cells": int, "lstm_layers": int,
}


def build_parser() -> argparse.ArgumentParser:
    defaults, training = PipelineConfig(), TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    data.add_argument("--data_root", default=SAMPLE_DATA_ROOT,
                      help="folder with train/ and validate/ shards (default: bundled sample)")
    data.add_argument("--train_data_pattern",
                      help=f"glob of training shards (default: <data_root>/{TRAIN_PATTERN})")
    data.add_argument("--eval_data_pattern",
                      help=f"glob of validation shards (default: <data_root>/{EVAL_PATTERN})")
    model = parser.add_argument_group("model (starter code flags)")
    model.add_argument("--model", default=training.model)
    model.add_argument("--feature_names", default=training.feature_names)
    model.add_argument("--feature_sizes", default=training.feature_sizes)
    model.add_argument("--num_classes", type=int, default=training.num_classes)
    model.add_argument("--label_loss", default=training.label_loss)
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
    train.add_argument("--warm_start", action="store_true",
                       help="start from the weights of the last blessed model (same "
                            "architecture), when no checkpoint is resumed")
    run = parser.add_argument_group("pipeline")
    run.add_argument("--pipeline_root", default=defaults.pipeline_root)
    run.add_argument("--serving_model_dir", default=defaults.serving_model_dir)
    run.add_argument("--metadata_path", default=None,
                     help="ML Metadata SQLite file (default: <pipeline_root>/metadata.sqlite)")
    run.add_argument("--gap_floor", type=float, default=defaults.gap_floor,
                     help="a model is blessed only with validate GAP at least this")
    run.add_argument("--max_gap_regression", type=float, default=defaults.max_gap_regression,
                     help="largest GAP drop vs the last blessed model that still blesses")
    run.add_argument("--predict_data_pattern",
                     help="also write a predictions CSV of the blessed model for these shards "
                          "(e.g. the unlabelled test partition)")
    run.add_argument("--no_cache", action="store_true", help="rerun every component")
    run.add_argument("--verbose", action="store_true",
                     help="show every TFX/Beam log line, not only component progress")
    return parser


class _ProgressOnly(logging.Filter):
    """Keeps errors, our trainer's warnings (resumed, warm-started) and the runner's
    'Component X is running/finished' lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.ERROR
                or (record.levelno >= logging.WARNING and record.name.startswith("trainer_module"))
                or (record.getMessage().startswith("Component ") and " is " in record.getMessage()))


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    if not verbose:
        # Google client libraries warn about Python 3.10 on import; TFX 1.16 requires it.
        warnings.filterwarnings("ignore", category=FutureWarning)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_ProgressOnly())


def config_from_args(args: argparse.Namespace) -> tuple[PipelineConfig, dict[str, list[str]]]:
    """Validates the flags and the data they point at; raises PreflightError/FeatureSpecError."""
    spec = FeatureSpec.from_flags(args.feature_names, args.feature_sizes)
    if args.frame_features and spec == TrainingConfig().feature_spec():
        spec = FeatureSpec.of(FRAME_LEVEL_FEATURES)  # the starter code's frame defaults
    if args.frame_features and not spec.is_frame_level:
        raise FeatureSpecError(
            f"--frame_features needs frame-level --feature_names ({','.join(FRAME_LEVEL_FEATURES)}"
            f"), got {','.join(spec.names)}")
    train_glob = args.train_data_pattern or os.path.join(args.data_root, TRAIN_PATTERN)
    eval_glob = args.eval_data_pattern or os.path.join(args.data_root, EVAL_PATTERN)
    patterns = {"--train_data_pattern": train_glob, "--eval_data_pattern": eval_glob}
    if args.predict_data_pattern:
        patterns["--predict_data_pattern"] = args.predict_data_pattern
    files = preflight.check_patterns(patterns)
    for flag, name in (("--train_steps", "train_steps"), ("--batch_size", "batch_size"),
                       ("--checkpoint_steps", "checkpoint_steps")):
        if getattr(args, name) <= 0:
            raise preflight.PreflightError(f"{flag} must be positive, got {getattr(args, name)}")
    input_base, train_pattern, eval_pattern = preflight.split_patterns(
        os.path.abspath(train_glob), os.path.abspath(eval_glob))
    model_hparams = {flag: getattr(args, flag) for flag in MODEL_HPARAM_FLAGS
                     if getattr(args, flag) is not None}
    training = TrainingConfig(
        model=args.model, **spec.to_dict(), num_classes=args.num_classes,
        batch_size=args.batch_size, base_learning_rate=args.base_learning_rate,
        learning_rate_decay=args.learning_rate_decay,
        learning_rate_decay_examples=args.learning_rate_decay_examples,
        clip_gradient_norm=args.clip_gradient_norm,
        regularization_penalty=args.regularization_penalty, label_loss=args.label_loss,
        top_k=args.top_k, max_frames=args.max_frames, seed=args.seed,
        train_dir=os.path.abspath(
            args.train_dir or os.path.join(args.pipeline_root, "train_dir", args.model)),
        checkpoint_steps=args.checkpoint_steps, start_new_model=args.start_new_model,
        model_hparams=model_hparams)
    config = PipelineConfig(
        data_root=input_base, train_pattern=train_pattern, eval_pattern=eval_pattern,
        pipeline_root=os.path.abspath(args.pipeline_root),
        serving_model_dir=os.path.abspath(args.serving_model_dir),
        metadata_path=args.metadata_path, train_steps=args.train_steps,
        gap_floor=args.gap_floor, max_gap_regression=args.max_gap_regression,
        enable_cache=not args.no_cache, warm_start=args.warm_start,
        predict_data_pattern=(os.path.abspath(args.predict_data_pattern)
                              if args.predict_data_pattern else None),
        training=training)
    return config, files


def check_model_and_data(config: PipelineConfig, files: dict[str, list[str]]) -> None:
    """Checks that need TensorFlow: the model/loss names and the first record's features."""
    from trainer_module.checkpoints import CheckpointMismatchError, check_train_dir
    from trainer_module.losses import LOSSES
    from trainer_module.models import build_model

    training = config.training
    if training.label_loss not in LOSSES:
        raise preflight.PreflightError(
            f"unknown --label_loss {training.label_loss!r}; choose one of {', '.join(LOSSES)}")
    try:
        build_model(training.model, training.feature_spec(), training.num_classes,
                    **training.model_hparams)
    except ValueError as error:
        raise preflight.PreflightError(str(error)) from None
    for flag_files in files.values():
        preflight.check_first_example(flag_files[0], training.feature_spec())
    try:
        check_train_dir(training)
    except CheckpointMismatchError as error:
        raise preflight.PreflightError(str(error)) from None


def run(config: PipelineConfig) -> None:
    """Runs every component (cached ones are reused) with LocalDagRunner."""
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    from pipeline.pipeline import create_pipeline

    os.makedirs(config.pipeline_root, exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(config.metadata_sqlite)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, connection))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config, files = config_from_args(args)
        check_model_and_data(config, files)
    except (preflight.PreflightError, FeatureSpecError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_logging(args.verbose)
    print(f"Running pipeline on {config.data_root} "
          f"(train: {len(files['--train_data_pattern'])} shards, "
          f"validate: {len(files['--eval_data_pattern'])} shards), model {config.training.model}")
    run(config)

    from pipeline.summary import format_summary, latest_run_result

    print(format_summary(latest_run_result(config.metadata_sqlite), config.pipeline_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
