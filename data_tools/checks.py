"""Checks of the user's data run before any work starts, so that a mistake costs seconds, not a run
(the pipeline's preflight and the data tools share them).

Each failure is a `PreflightError` whose message is one line naming the flag, file or feature.
"""

from __future__ import annotations

import glob
import os

from shards.files import compression_of, expand_pattern
from trainer_module.features import FeatureSpec

# A data root's layout: one folder per split, as an Examples artifact has (Split-train, …).
SPLIT_DIRS = ("train", "validate")
TRAIN_PATTERN = "train/*.tfrecord"
EVAL_PATTERN = "validate/*.tfrecord"
# The official download's layout: every shard in one folder (train0000.tfrecord, validate…).
FLAT_TRAIN_PATTERN = "train*.tfrecord"
FLAT_EVAL_PATTERN = "validate*.tfrecord"


class PreflightError(Exception):
    """A problem with the user's flags or data, detected before the pipeline runs."""


def data_root_patterns(data_root: str) -> tuple[str, str]:
    """The train and validate globs of `data_root`: its train/ and validate/ folders, or, where
    it has no train/ folder, its own train*.tfrecord and validate*.tfrecord shards as the
    official download writes them."""
    flat = not os.path.isdir(os.path.join(data_root, SPLIT_DIRS[0])) and bool(
        glob.glob(os.path.join(glob.escape(data_root), FLAT_TRAIN_PATTERN)))
    train, evaluate = (FLAT_TRAIN_PATTERN, FLAT_EVAL_PATTERN) if flat else (TRAIN_PATTERN,
                                                                             EVAL_PATTERN)
    return os.path.join(data_root, train), os.path.join(data_root, evaluate)


def check_patterns(patterns: dict[str, str]) -> dict[str, list[str]]:
    """Every named pattern must match at least one file."""
    matched = {}
    for flag, pattern in patterns.items():
        files = expand_pattern(pattern)
        if not files:
            raise PreflightError(f"{flag} {pattern} matches no files")
        matched[flag] = files
    return matched


def check_first_example(path: str, spec: FeatureSpec) -> None:
    """The first record of `path` must hold every configured feature with its configured size."""
    import tensorflow as tf


    try:
        record = next(iter(tf.data.TFRecordDataset(path, compression_type=compression_of(path))))
    except StopIteration:
        raise PreflightError(f"{path} holds no records") from None
    except tf.errors.OpError as error:
        raise PreflightError(f"{path} is not a readable TFRecord file: {error.message}") from None
    # A tf.Example parses as a SequenceExample whose context holds its features.
    sequence = tf.train.SequenceExample.FromString(record.numpy())
    frame_features = sequence.feature_lists.feature_list
    _check_data_level(path, spec, sequence.context.feature, frame_features)
    if spec.is_frame_level:
        available, kind, unit = frame_features, "frame feature", "bytes per frame"

        def size_of(name: str) -> int | None:
            frames = available[name].feature
            return len(frames[0].bytes_list.value[0]) if frames else None
    else:
        available, kind, unit = sequence.context.feature, "feature", "values"

        def size_of(name: str) -> int | None:
            return len(available[name].float_list.value)

    for name, size in spec.items():
        if name not in available:
            raise PreflightError(
                f"{path}: {kind} {name!r} is not in the data (it has "
                f"{', '.join(sorted(available))})")
        found = size_of(name)
        if found is not None and found != size:
            raise PreflightError(
                f"{path}: {kind} {name!r} has {found} {unit} but --feature_sizes says {size}")


def _check_data_level(path: str, spec: FeatureSpec, context_features, frame_features) -> None:
    """Video-level flags need tf.Examples; frame-level flags need SequenceExamples."""
    names = ",".join(spec.names)
    if spec.is_frame_level and not frame_features:
        raise PreflightError(
            f"{path} holds video-level tf.Examples but --feature_names {names} "
            "are frame-level; drop --frame_features or use mean_rgb,mean_audio")
    if not spec.is_frame_level and frame_features:
        raise PreflightError(
            f"{path} holds frame-level SequenceExamples ({', '.join(sorted(frame_features))}) "
            f"but --feature_names {names} are video-level; use --frame_features "
            "with a frame-level model")
    if not spec.is_frame_level and not context_features:
        raise PreflightError(f"{path} holds no tf.Example features")
