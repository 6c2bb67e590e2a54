"""Checks run before any component starts, so that a user mistake costs seconds, not a run.

Each failure is a `PreflightError` whose message is one line naming the flag, file or feature.
"""

from __future__ import annotations

import glob
import os

from trainer_module.features import FeatureSpec


class PreflightError(Exception):
    """A problem with the user's flags or data, detected before the pipeline runs."""


def glob_files(pattern: str) -> list[str]:
    """Local or remote (gs://, s3://) glob."""
    if "://" in pattern:
        import tensorflow as tf

        return sorted(tf.io.gfile.glob(pattern))
    return sorted(glob.glob(pattern))


def split_patterns(train_glob: str, eval_glob: str) -> tuple[str, str, str]:
    """ImportExampleGen takes one input base and patterns relative to it; derive them from
    the starter code's two absolute `--train_data_pattern` / `--eval_data_pattern` globs."""
    base = os.path.commonpath([os.path.dirname(train_glob), os.path.dirname(eval_glob)])
    return base, os.path.relpath(train_glob, base), os.path.relpath(eval_glob, base)


def check_patterns(patterns: dict[str, str]) -> dict[str, list[str]]:
    """Every named pattern must match at least one file."""
    matched = {}
    for flag, pattern in patterns.items():
        files = glob_files(pattern)
        if not files:
            raise PreflightError(f"{flag} {pattern} matches no files")
        matched[flag] = files
    return matched


def check_first_example(path: str, spec: FeatureSpec) -> None:
    """The first record of `path` must hold every configured feature with its configured size."""
    import tensorflow as tf

    from trainer_module.reader import compression_of

    try:
        record = next(iter(tf.data.TFRecordDataset(path, compression_type=compression_of(path))))
    except StopIteration:
        raise PreflightError(f"{path} holds no records") from None
    except tf.errors.OpError as error:
        raise PreflightError(f"{path} is not a readable TFRecord file: {error.message}") from None
    sequence = tf.train.SequenceExample.FromString(record.numpy())
    frame_features = sequence.feature_lists.feature_list
    if spec.is_frame_level:
        _check_frame_features(path, frame_features, spec)
        return
    if frame_features:
        raise PreflightError(
            f"{path} holds frame-level SequenceExamples ({', '.join(sorted(frame_features))}) "
            f"but --feature_names {','.join(spec.names)} are video-level; use --frame_features "
            "with a frame-level model")
    features = sequence.context.feature
    if not features:
        raise PreflightError(f"{path} holds no tf.Example features")
    for name, size in spec.items():
        if name not in features:
            raise PreflightError(
                f"{path}: feature {name!r} is not in the data (it has "
                f"{', '.join(sorted(features))})")
        found = len(features[name].float_list.value)
        if found != size:
            raise PreflightError(
                f"{path}: feature {name!r} has {found} values but --feature_sizes says {size}")


def _check_frame_features(path: str, frame_features, spec: FeatureSpec) -> None:
    if not frame_features:
        raise PreflightError(
            f"{path} holds video-level tf.Examples but --feature_names {','.join(spec.names)} "
            "are frame-level; drop --frame_features or use mean_rgb,mean_audio")
    for name, size in spec.items():
        if name not in frame_features:
            raise PreflightError(
                f"{path}: frame feature {name!r} is not in the data (it has "
                f"{', '.join(sorted(frame_features))})")
        frames = frame_features[name].feature
        found = len(frames[0].bytes_list.value[0]) if frames else size
        if found != size:
            raise PreflightError(
                f"{path}: frame feature {name!r} has {found} bytes per frame but "
                f"--feature_sizes says {size}")
