"""Validates YouTube-8M shards before a run (`make validate-data DATA_ROOT=…`; `make run-local`
runs the same scan as its pre-flight when the data is small).

Reads every record of every shard: CRC (corrupt or truncated files), empty shards, features
and sizes, labels within the classes, and the dataset generation: 2018 (`id`, 3,862 classes)
or 2017 (`video_id`, 4,716 classes). Each problem is one line naming the file.

    python -m data_tools.validate_data --data_root=/data/yt8m/2018/video [--frame_features]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from data_tools.checks import (
    EVAL_PATTERN,
    TRAIN_PATTERN,
    PreflightError,
    check_first_example,
    check_patterns,
)
from shards.files import compression_of
from trainer_module.features import GENERATIONS, NUM_CLASSES_2017, NUM_CLASSES_2018

BATCH = 512


@dataclasses.dataclass
class ShardSummary:
    path: str
    records: int
    generation: str | None  # "2018", "2017", or None when records carry no id
    largest_label: int  # -1 when unlabelled


def detect_generation(path: str) -> str | None:
    """The generation of a shard from its first record's id key."""
    import tensorflow as tf


    for record in tf.data.TFRecordDataset(path, compression_of(path)).take(1):
        sequence = tf.train.SequenceExample.FromString(record.numpy())
        keys = sequence.context.feature
        for key, (generation, _) in GENERATIONS.items():
            if key in keys:
                return generation
    return None


def scan_shard(path: str, spec, num_classes: int, max_frames: int, progress=None
               ) -> ShardSummary:
    """Reads every record; raises PreflightError naming `path` on the first problem."""
    import tensorflow as tf

    from shards.tf_errors import op_error_reason
    from trainer_module.features import LABELS_KEY
    from trainer_module.reader import parse_examples

    if "://" not in path and os.path.getsize(path) == 0:
        raise PreflightError(f"{path} is empty (0 bytes)")
    records, largest = 0, -1
    dataset = tf.data.TFRecordDataset(path, compression_of(path)).batch(BATCH)
    try:
        for batch in dataset:
            parsed = parse_examples(batch, spec, with_labels=True, max_frames=max_frames)
            labels = parsed[LABELS_KEY].values
            if tf.size(labels) > 0:
                smallest = int(tf.reduce_min(labels))
                largest = max(largest, int(tf.reduce_max(labels)))
                if smallest < 0:
                    raise PreflightError(f"{path}: label {smallest} is negative")
            records += int(batch.shape[0])
            if progress is not None:
                progress.update(int(batch.shape[0]))
    except tf.errors.DataLossError:
        raise PreflightError(f"{path}: corrupt or truncated TFRecord file (a CRC check or "
                             "record length failed)") from None
    except tf.errors.InvalidArgumentError as error:
        raise PreflightError(f"{path}: records {records}-{records + BATCH - 1} do not match "
                             f"the features: {op_error_reason(error.message)}") from None
    if records == 0:
        raise PreflightError(f"{path} holds no records")
    if largest >= num_classes:
        raise PreflightError(
            f"{path}: label {largest} is outside the {num_classes} classes of --num_classes "
            "(2018 data has 3,862 classes, 2017 data 4,716)")
    return ShardSummary(path, records, detect_generation(path), largest)


def validate(files: dict[str, list[str]], spec, num_classes: int, max_frames: int,
             progress: bool = True) -> list[ShardSummary]:
    """Scans every file; checks that all shards are of one generation."""
    from tqdm import tqdm

    summaries = []
    with tqdm(unit=" videos", desc="validating", disable=not progress, file=sys.stderr) as bar:
        for flag_files in files.values():
            check_first_example(flag_files[0], spec)
            summaries += [scan_shard(path, spec, num_classes, max_frames, bar)
                          for path in flag_files]
    generations = {s.generation for s in summaries if s.generation}
    if len(generations) > 1:
        by_generation = {g: next(s.path for s in summaries if s.generation == g)
                         for g in sorted(generations)}
        raise PreflightError("shards of both dataset generations are mixed: " + ", ".join(
            f"{path} is {g}" for g, path in by_generation.items()))
    return summaries


def main(argv: list[str] | None = None) -> int:
    from trainer_module.features import FRAME_LEVEL_FEATURES, VIDEO_LEVEL_FEATURES, FeatureSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_root", required=True)
    parser.add_argument("--frame_features", action="store_true")
    parser.add_argument("--num_classes", type=int,
                        help=f"default: from the data's generation ({NUM_CLASSES_2018} for 2018, "
                             f"{NUM_CLASSES_2017} for 2017)")
    parser.add_argument("--max_frames", type=int, default=300)
    args = parser.parse_args(argv)
    spec = FeatureSpec.of(FRAME_LEVEL_FEATURES if args.frame_features else VIDEO_LEVEL_FEATURES)
    try:
        files = check_patterns({
            "--train_data_pattern": os.path.join(args.data_root, TRAIN_PATTERN),
            "--eval_data_pattern": os.path.join(args.data_root, EVAL_PATTERN)})
        first = next(iter(files.values()))[0]
        generation = detect_generation(first)
        num_classes = (args.num_classes
                       or dict(GENERATIONS.values()).get(generation, NUM_CLASSES_2018))
        summaries = validate(files, spec, num_classes, args.max_frames)
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    total = sum(s.records for s in summaries)
    print(f"ok: {len(summaries)} shards, {total} videos, {generation or 'unknown'} generation, "
          f"labels within {num_classes} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
