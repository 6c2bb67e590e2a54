"""Validates YouTube-8M shards before a run (`make validate-data DATA_ROOT=…`; `make run-local`
runs the same scan as its pre-flight when the data is small).

Reads every record of every shard: CRC (corrupt or truncated files), empty shards, features
and sizes, labels within the classes, and the dataset generation: 2018 (`id`, 3,862 classes)
or 2017 (`video_id`, 4,716 classes); with `--segment_labels`, each segment rating (start time
inside the video, score in [0, 1], class in the segment vocabulary). Each problem is one
line naming the file (and the video and field).

    python -m data_tools.validate_data --data_root=/data/yt8m/2018/video [--frame_features]
    python -m data_tools.validate_data --data_root=build/segment_sample --segment_labels
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from data_tools.checks import (
    PreflightError,
    check_first_example,
    check_patterns,
    data_root_patterns,
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


def check_segment_ratings(path: str, video_ids, num_frames, labels, start_times,
                          scores) -> None:
    """Each video's segment ratings (numpy, one list per video): the three lists equally
    long, start times within the video, scores in [0, 1], classes in the segment vocabulary;
    raises PreflightError naming the file, the video and the field."""
    from trainer_module.segments import (
        SEGMENT_LABELS_KEY,
        SEGMENT_SCORES_KEY,
        SEGMENT_START_TIMES_KEY,
        segment_class_ids,
    )

    vocabulary = set(segment_class_ids())
    for video, frames, video_labels, starts, video_scores in zip(
            video_ids, num_frames, labels, start_times, scores, strict=True):
        where = f"{path}: video {video.decode() if isinstance(video, bytes) else video}"
        if not len(video_labels) == len(starts) == len(video_scores):
            raise PreflightError(
                f"{where}: {SEGMENT_LABELS_KEY}, {SEGMENT_START_TIMES_KEY} and "
                f"{SEGMENT_SCORES_KEY} must be equally long, got {len(video_labels)}, "
                f"{len(starts)} and {len(video_scores)}")
        for start in starts:
            if not 0 <= start < frames:
                raise PreflightError(
                    f"{where}: {SEGMENT_START_TIMES_KEY} {start} is outside the video "
                    f"(frames 0-{frames - 1})")
        for score in video_scores:
            if not 0 <= score <= 1:
                raise PreflightError(f"{where}: {SEGMENT_SCORES_KEY} {score:g} is outside "
                                     "[0, 1]")
        for label in video_labels:
            if label not in vocabulary:
                raise PreflightError(
                    f"{where}: {SEGMENT_LABELS_KEY} {label} is not one of the "
                    f"{len(vocabulary)} rated classes (trainer_module/segment_label_ids.csv)")


def _check_batch_segments(path: str, batch, spec) -> None:
    """The segment ratings of a batch of serialized SequenceExamples, against each video's
    real frame count."""
    import tensorflow as tf

    from contract.saved_model import VIDEO_ID_OUTPUT
    from trainer_module.features import NUM_FRAMES_KEY
    from trainer_module.reader import parse_segment_ratings
    from trainer_module.segments import SEGMENT_CONTEXT_KEYS

    parsed = parse_segment_ratings(batch, spec, max_frames=None, with_ids=True)
    check_segment_ratings(path, parsed[VIDEO_ID_OUTPUT].numpy(),
                          parsed[NUM_FRAMES_KEY].numpy(),
                          *(tf.RaggedTensor.from_sparse(parsed[key]).to_list()
                            for key in SEGMENT_CONTEXT_KEYS))


def scan_shard(path: str, spec, num_classes: int, max_frames: int, progress=None,
               segments: bool = False) -> ShardSummary:
    """Reads every record; raises PreflightError naming `path` on the first problem; with
    `segments`, also each video's segment ratings."""
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
            if segments:
                _check_batch_segments(path, batch, spec)
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
             progress: bool = True, segments: bool = False) -> list[ShardSummary]:
    """Scans every file; checks that all shards are of one generation; with `segments`,
    the segment ratings too."""
    from tqdm import tqdm

    summaries = []
    with tqdm(unit=" videos", desc="validating", disable=not progress, file=sys.stderr) as bar:
        for flag_files in files.values():
            check_first_example(flag_files[0], spec)
            summaries += [scan_shard(path, spec, num_classes, max_frames, bar, segments)
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
    parser.add_argument("--segment_labels", action="store_true",
                        help="segment-rated frame-level data (2019): also check every rating")
    args = parser.parse_args(argv)
    frame_level = args.frame_features or args.segment_labels
    spec = FeatureSpec.of(FRAME_LEVEL_FEATURES if frame_level else VIDEO_LEVEL_FEATURES)
    try:
        train_pattern, eval_pattern = data_root_patterns(args.data_root)
        files = check_patterns({"--train_data_pattern": train_pattern,
                                "--eval_data_pattern": eval_pattern})
        first = next(iter(files.values()))[0]
        generation = detect_generation(first)
        num_classes = (args.num_classes
                       or dict(GENERATIONS.values()).get(generation, NUM_CLASSES_2018))
        summaries = validate(files, spec, num_classes, args.max_frames,
                             segments=args.segment_labels)
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    total = sum(s.records for s in summaries)
    print(f"ok: {len(summaries)} shards, {total} videos, {generation or 'unknown'} generation, "
          f"labels within {num_classes} classes"
          + (", segment ratings within the videos and the rated classes"
             if args.segment_labels else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
