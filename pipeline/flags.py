"""Command-line flags shared by the local and Kubeflow runners: where the data and the
outputs are, the starter code's model and training flags, and the blessing rule, turned into
a TrainingConfig."""

from __future__ import annotations

import argparse
import dataclasses
import os

from data_tools.checks import PreflightError
from pipeline.pipeline_config import PipelineConfig
from trainer_module.features import (
    FRAME_LEVEL_FEATURES,
    NUM_CLASSES_2017,
    FeatureSpec,
    FeatureSpecError,
)
from trainer_module.hparams import field_types
from trainer_module.models import hyperparameter_flags
from trainer_module.training_config import TrainingConfig


def _bool_flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _parser_of(kind: type):
    """argparse's `type` for a declared field's type (hparams.FLAG_TYPES)."""
    return _bool_flag if kind is bool else kind


_TRAINING_FIELDS = {field.name: field for field in dataclasses.fields(TrainingConfig)}
_TRAINING_TYPES = field_types(TrainingConfig)


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
    """The model, hyperparameter and training flag groups (starter code names and defaults):
    one flag per TrainingConfig field, with the field's default and help."""
    defaults, training = PipelineConfig(), TrainingConfig()
    model = parser.add_argument_group("model (starter code flags)")
    model.add_argument("--preset", choices=sorted(PRESETS),
                       help="a named configuration; explicit flags override its values")
    model.add_argument("--model", default=training.model)
    model.add_argument("--feature_names", default=training.feature_names)
    model.add_argument("--feature_sizes", default=training.feature_sizes)
    model.add_argument("--num_classes", type=int,
                       help=f"default: {training.num_classes} (2018 data); {NUM_CLASSES_2017} "
                            "when the data is the 2017 release's (detected from its video_id "
                            "key)")
    model.add_argument("--frame_features", action="store_true",
                       help="frame-level SequenceExamples (default features: rgb,audio)")
    hparams = parser.add_argument_group("model hyperparameters (starter code flags; "
                                        "unset ones keep the model's default)")
    for flag, (kind, text) in hyperparameter_flags().items():
        hparams.add_argument(f"--{flag}", type=_parser_of(kind), default=None, help=text)
    train = parser.add_argument_group("training (starter code flags)")
    train.add_argument("--train_steps", type=int, default=defaults.train_steps)
    train.add_argument("--eval_steps", type=int, default=defaults.eval_steps,
                       help="validation batches per Trainer evaluation (default: the whole "
                            "validate split; the Evaluator always reads all of it)")
    train.add_argument("--train_dir", help=_TRAINING_FIELDS["train_dir"].metadata["help"])
    for field in _TRAINING_FIELDS.values():
        if not field.metadata["flag"]:
            continue
        default = getattr(training, field.name)
        # A bool flag alone means true; --name=false turns off one that defaults to true.
        kind = _TRAINING_TYPES[field.name]
        optional_value = {"nargs": "?", "const": True} if kind is bool else {}
        train.add_argument(f"--{field.name}", type=_parser_of(kind), default=default,
                           help=field.metadata["help"], **optional_value)
    train.add_argument("--warm_start", action="store_true",
                       help="start from the weights of the last blessed model (same "
                            "architecture), when no checkpoint is resumed")



def add_run_flags(parser: argparse.ArgumentParser, data_root: str | None = None,
                  pipeline_root: str | None = None,
                  serving_model_dir: str | None = None) -> argparse._ArgumentGroup:
    """The data and output flags of both runners, returned as their group for the runner's
    own. A `data_root` or `pipeline_root` of None makes that flag required (Kubeflow);
    `serving_model_dir` None means <pipeline_root>/serving_model."""
    run = parser.add_argument_group("pipeline")
    run.add_argument("--data_root", default=data_root, required=data_root is None,
                     help="folder with train/ and validate/ shards, or with the official "
                          "download's train*.tfrecord and validate*.tfrecord; gs://, s3:// "
                          "for Kubeflow (default: %(default)s)")
    run.add_argument("--pipeline_root", default=pipeline_root, required=pipeline_root is None,
                     help="the components' outputs; for Kubeflow gs://, s3:// or a path the "
                          "pods share (default: %(default)s)")
    run.add_argument("--serving_model_dir", default=serving_model_dir,
                     help="the Pusher's destination, TF Serving's base path (default: "
                          f"{serving_model_dir or '<pipeline_root>/serving_model'})")
    run.add_argument("--predict_data_pattern",
                     help="also write a predictions CSV of the blessed model for these shards "
                          "(e.g. the unlabelled test partition)")
    run.add_argument("--import_examples", action="store_true",
                     help="use the shards in place as the Examples artifact (data_root must "
                          "hold Split-train/ and Split-validate/) instead of copying them")
    run.add_argument("--no_cache", action="store_true", help="rerun every component")
    return run


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
    frame_features = args.frame_features or args.segment_labels  # segments are frame-level
    if frame_features and spec == TrainingConfig().feature_spec():
        spec = FeatureSpec.of(FRAME_LEVEL_FEATURES)  # the starter code's frame defaults
    if frame_features and not spec.is_frame_level:
        raise FeatureSpecError(
            f"--frame_features needs frame-level --feature_names ({','.join(FRAME_LEVEL_FEATURES)}"
            f"), got {','.join(spec.names)}")
    for flag in ("train_steps", "eval_steps"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise PreflightError(f"--{flag} must be positive, got {getattr(args, flag)}")
    if args.neighbour_weight and spec.is_frame_level:
        raise PreflightError("--neighbour_weight needs video-level features (mean_rgb,mean_audio)")
    model_hparams = {flag: getattr(args, flag) for flag in hyperparameter_flags()
                     if getattr(args, flag) is not None}
    flags = {name: getattr(args, name) for name, field in _TRAINING_FIELDS.items()
             if field.metadata["flag"]}
    try:
        training = TrainingConfig(
            model=args.model, **spec.to_dict(),
            num_classes=args.num_classes or TrainingConfig().num_classes,
            train_dir=args.train_dir or default_train_dir, model_hparams=model_hparams, **flags)
    except ValueError as error:
        raise PreflightError(str(error)) from None
    if training.warm_start_from:
        training = dataclasses.replace(training,
                                       warm_start_from=_exported_model(training.warm_start_from))
    check_model(training)
    return training


def _exported_model(path: str) -> str:
    """`--warm_start_from`'s SavedModel: the folder itself or, for a folder of versions (a
    Pusher's destination), its latest; local paths made absolute. Raises PreflightError."""
    from serving.model_dir import ModelNotFoundError, resolve_model_dir

    local = "://" not in path
    try:
        return resolve_model_dir(os.path.abspath(path) if local else path)
    except ModelNotFoundError as error:
        raise PreflightError(f"--warm_start_from: {error}") from None


def check_model(training: TrainingConfig) -> None:
    """Builds the model and loss `training` trains (the model name, its hyperparameters and
    the loss all checked), before any pipeline is run or compiled; raises PreflightError."""
    from trainer_module.losses import get_loss
    from trainer_module.train import build_configured_model

    try:
        get_loss(training.label_loss, training.label_smoothing, training.segment_labels)
        build_configured_model(training)
    except ValueError as error:
        raise PreflightError(str(error)) from None


def pipeline_config_of(args: argparse.Namespace, training: TrainingConfig,
                       **locations) -> PipelineConfig:
    """The PipelineConfig of the flags both runners take (steps, blessing, cache, warm start,
    in-place import), with `training` and what the runner decides itself (`locations`:
    data_root, pipeline_root, serving_model_dir, Beam arguments, …)."""
    return PipelineConfig(
        train_steps=args.train_steps, eval_steps=args.eval_steps, gap_floor=args.gap_floor,
        max_gap_regression=args.max_gap_regression, enable_cache=not args.no_cache,
        warm_start=args.warm_start, import_examples=args.import_examples, training=training,
        **locations)
