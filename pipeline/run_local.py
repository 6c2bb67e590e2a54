"""Runs the pipeline on this machine with LocalDagRunner (`make run-local`).

Flags mirror the starter code's `train.py` where it has one:
    python -m pipeline.run_local --model=MoeModel --train_steps=500 \
        --train_data_pattern='data/train/*.tfrecord' --eval_data_pattern='data/validate/*.tfrecord'
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import gc
import logging
import os
import sys
import warnings
from collections.abc import Iterator

from data_tools.checks import (
    EVAL_PATTERN,
    SPLIT_DIRS,
    TRAIN_PATTERN,
    PreflightError,
    check_first_example,
    check_patterns,
    data_root_patterns,
)
from pipeline.flags import (
    add_blessing_flags,
    add_run_flags,
    add_training_flags,
    parse_args_with_preset,
    pipeline_config_of,
    training_config_from_args,
)
from pipeline.pipeline_config import (
    MULTI_PROCESSING_MIN_BYTES,
    SAMPLE_DATA_ROOT,
    PipelineConfig,
    beam_workers_for,
    direct_runner_args,
)
from trainer_module.features import NUM_CLASSES_2017, FeatureSpecError

# Pre-flight reads every record of data up to this size (the bundled sample takes ~1 s).
FULL_SCAN_BYTES = 2 * 1024**3
# Above this, say that ImportExampleGen's copy can be skipped (its rate: make bench-scale).
COPY_NOTE_BYTES = 1024**3


def split_patterns(train_glob: str, eval_glob: str) -> tuple[str, str, str]:
    """ImportExampleGen takes one input base and patterns relative to it; derive them from
    the starter code's two absolute `--train_data_pattern` / `--eval_data_pattern` globs."""
    base = os.path.commonpath([os.path.dirname(train_glob), os.path.dirname(eval_glob)])
    return base, os.path.relpath(train_glob, base), os.path.relpath(eval_glob, base)


def build_parser() -> argparse.ArgumentParser:
    defaults = PipelineConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run = add_run_flags(parser, SAMPLE_DATA_ROOT, defaults.pipeline_root,
                        defaults.serving_model_dir)
    run.add_argument("--train_data_pattern",
                     help=f"glob of training shards (default: <data_root>/{TRAIN_PATTERN})")
    run.add_argument("--eval_data_pattern",
                     help=f"glob of validation shards (default: <data_root>/{EVAL_PATTERN})")
    run.add_argument("--metadata_path", default=None,
                     help="ML Metadata SQLite file (default: <pipeline_root>/metadata.sqlite)")
    run.add_argument("--tune", type=int, default=0, metavar="TRIALS",
                     help="add a Tuner step: random search of this many trials (learning "
                          "rate, regularization, MoE experts), each --train_steps long; the "
                          "Trainer uses the best")
    run.add_argument("--beam_workers", type=int, metavar="N",
                     help="Beam DirectRunner worker processes for the data components; 0 runs "
                          "them in this process (default below "
                          f"{MULTI_PROCESSING_MIN_BYTES / 1e9:g} GB of shards, one per CPU above)")
    run.add_argument("--verbose", action="store_true",
                     help="show every TFX/Beam log line, not only component progress")
    add_training_flags(parser)
    add_blessing_flags(parser)
    return parser


class _ProgressOnly(logging.Filter):
    """Keeps errors and our trainer's progress (validation GAP, resumed, warm-started);
    `pipeline.progress` prints each component's start and end itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.name.startswith("trainer_module")


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    if not verbose:
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_ProgressOnly())
        # TensorFlow's own handler: asset notices and deprecation notes about library code.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def local_bytes(files: dict[str, list[str]]) -> int:
    """Bytes of the matched shards on local disks (object-store shards are not counted)."""
    return sum(os.path.getsize(f) for fs in files.values() for f in fs if "://" not in f)


def config_from_args(args: argparse.Namespace) -> tuple[PipelineConfig, dict[str, list[str]]]:
    """Validates the flags and the data they point at; raises PreflightError/FeatureSpecError."""
    if args.beam_workers is not None and args.beam_workers < 0:
        raise PreflightError(f"--beam_workers must be 0 or more, got {args.beam_workers}")
    training = training_config_from_args(
        args, os.path.join(args.pipeline_root, "train_dir", args.model))
    training = dataclasses.replace(training, train_dir=os.path.abspath(training.train_dir))
    train_default, eval_default = data_root_patterns(args.data_root)
    train_glob = args.train_data_pattern or train_default
    eval_glob = args.eval_data_pattern or eval_default
    if args.import_examples:
        train_glob, eval_glob = (os.path.join(args.data_root, f"Split-{split}", "*")
                                 for split in SPLIT_DIRS)
    patterns = {"--train_data_pattern": train_glob, "--eval_data_pattern": eval_glob}
    if args.predict_data_pattern:
        patterns["--predict_data_pattern"] = args.predict_data_pattern
    files = check_patterns(patterns)
    beam_workers = (args.beam_workers if args.beam_workers is not None
                    else beam_workers_for(local_bytes(files)))
    input_base, train_pattern, eval_pattern = split_patterns(
        os.path.abspath(train_glob), os.path.abspath(eval_glob))
    config = pipeline_config_of(
        args, training, data_root=input_base, train_pattern=train_pattern,
        eval_pattern=eval_pattern, pipeline_root=os.path.abspath(args.pipeline_root),
        serving_model_dir=os.path.abspath(args.serving_model_dir),
        metadata_path=args.metadata_path,
        predict_data_pattern=(os.path.abspath(args.predict_data_pattern)
                              if args.predict_data_pattern else None),
        tune_trials=args.tune, beam_pipeline_args=direct_runner_args(beam_workers))
    return config, files


def check_data(config: PipelineConfig, files: dict[str, list[str]],
               num_classes_given: bool) -> tuple[PipelineConfig, list[str]]:
    """Checks that read the data (the flags built the model and loss already): its
    generation, features, labels and integrity, and the train_dir's checkpoints. Returns the
    config (adapted to 2017 data) and notes for the user."""
    from data_tools.validate_data import detect_generation, validate
    from trainer_module.checkpoints import CheckpointMismatchError, check_train_dir
    from trainer_module.distribution import DeviceError, check_gpus

    notes = []
    training = config.training
    first = files["--train_data_pattern"][0]
    generation = detect_generation(first)
    if generation == "2017" and not num_classes_given:
        training = dataclasses.replace(training, num_classes=NUM_CLASSES_2017)
        config = dataclasses.replace(config, training=training)
        notes.append(f"note: {first} is 2017 YouTube-8M data (video_id, {NUM_CLASSES_2017} "
                     f"classes): using --num_classes={NUM_CLASSES_2017}")
    data_bytes = local_bytes(files)
    if data_bytes <= FULL_SCAN_BYTES:
        validate(files, training.feature_spec(), training.num_classes, training.max_frames,
                 progress=False, segments=training.segment_labels)
    else:  # terabytes: check each pattern's first record; `make validate-data` reads all
        for flag_files in files.values():
            check_first_example(flag_files[0], training.feature_spec())
        notes.append(f"note: {data_bytes / 1e9:.0f} GB of data: only the first record of each "
                     "pattern was checked; `make validate-data` checks every record")
    if data_bytes > COPY_NOTE_BYTES and not config.import_examples:
        notes.append(f"note: ImportExampleGen copies and gzips all {data_bytes / 1e9:.0f} GB "
                     "first; shards laid out as Split-train/ and Split-validate/ are used in "
                     "place with --import_examples (docs/data.md)")
    try:
        check_train_dir(training)
        check_gpus(training.require_gpus)
    except (CheckpointMismatchError, DeviceError) as error:
        raise PreflightError(str(error)) from None
    return config, notes


def run(config: PipelineConfig) -> None:
    """Runs every component (cached ones are reused) with LocalDagRunner."""
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    from components.compat import around_each_local_launch
    from pipeline.pipeline import compile_for_local_runner, create_pipeline
    from pipeline.progress import timed_local_components

    os.makedirs(config.pipeline_root, exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(config.metadata_sqlite)
    with timed_local_components(), around_each_local_launch(memory_returned_after):
        tfx.orchestration.LocalDagRunner().run_with_ir(
            compile_for_local_runner(create_pipeline(config, connection)))


@contextlib.contextmanager
def memory_returned_after(component: str) -> Iterator[None]:
    """LocalDagRunner runs every component in this one process, one after the other: after
    each, Python's reference cycles are collected and the C heap's free pages go back to the
    system (glibc's `malloc_trim`), so that what one component freed is not held while the
    next runs (`make bench-full`, bench/README.md)."""
    try:
        yield
    finally:
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to return
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def failure_reason(error: BaseException) -> str:
    """The data problem behind a failed run if there is one (anomalies), else the error."""
    from components.anomalies_gate import DataAnomaliesError

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DataAnomaliesError):
            return f"{cause} (the run stopped before training)"
        cause = cause.__cause__ or cause.__context__
    return f"the pipeline failed: {type(error).__name__}: {str(error).splitlines()[0]}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args_with_preset(build_parser(), argv)
    try:
        config, files = config_from_args(args)
        config, notes = check_data(config, files, args.num_classes is not None)
    except (PreflightError, FeatureSpecError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_logging(args.verbose)
    for note in notes:
        print(note)
    print(f"Running pipeline on {config.data_root} "
          f"(train: {len(files['--train_data_pattern'])} shards, "
          f"validate: {len(files['--eval_data_pattern'])} shards), model {config.training.model}")
    try:
        run(config)
    except Exception as error:  # a component failed: its traceback is in the log above
        print(f"error: {failure_reason(error)}", file=sys.stderr)
        return 1

    from pipeline.summary import format_summary, latest_run_result

    print(format_summary(latest_run_result(config.metadata_sqlite)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
