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
    example = tf.train.Example.FromString(record.numpy())
    features = example.features.feature
    if not features:
        raise PreflightError(
            f"{path} does not hold video-level tf.Examples (no context features found); "
            "frame-level SequenceExamples need frame-level features and models")
    for name, size in spec.items():
        if name not in features:
            raise PreflightError(
                f"{path}: feature {name!r} is not in the data (it has "
                f"{', '.join(sorted(features))})")
        found = len(features[name].float_list.value)
        if found != size:
            raise PreflightError(
                f"{path}: feature {name!r} has {found} values but --feature_sizes says {size}")
