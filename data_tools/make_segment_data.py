"""Makes a segment-rated fixture (the 2019 data's layout) from real frame-level shards.

No real 2019 segment-rated shards are available to this project, so the ratings are drawn,
seeded, the way the 2019 raters produced theirs (the dataset page: ~5 rated segments per
validation video, each rating a class of the video's own labels as present, 1, or absent,
0, in that 5-second segment; 1,000 classes only): per video, up to `--ratings_per_video`
distinct segment start times (multiples of `--segment_size` before the last frame), each
rating one class. With probability `--negative_rate` that class is one the video does
not carry (score 0, a negative); otherwise it is one of the video's own labels within
`segment_label_ids.csv`, scored 1 with probability `--positive_rate` and 0 otherwise.
Frames, ids and labels are the input's, unchanged. The ratings say nothing about what
the segments show: segment quality numbers on this fixture mean nothing (docs/data.md).
One output shard per input shard, same file name.

    python -m data_tools.make_segment_data --input_pattern='data/sample/frame/train/*.tfrecord' \
        --output_dir=build/segment_sample/train
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from data_tools.checks import PreflightError
from data_tools.shard_rewrite import rewrite_shards
from trainer_module.features import FRAME_LEVEL_FEATURES, LABELS_KEY
from trainer_module.segments import (
    SEGMENT_LABELS_KEY,
    SEGMENT_SCORES_KEY,
    SEGMENT_SIZE,
    SEGMENT_START_TIMES_KEY,
    segment_class_ids,
)

RATINGS_PER_VIDEO = 5  # the 2019 validation data's average
POSITIVE_RATE = 0.6  # share of own-label ratings that find the class in the segment
NEGATIVE_RATE = 0.2  # share of ratings of a class the video does not carry


def rate_segments(labels: list[int], num_frames: int, rng: np.random.Generator,
                  segment_size: int = SEGMENT_SIZE, ratings_per_video: int = RATINGS_PER_VIDEO,
                  positive_rate: float = POSITIVE_RATE, negative_rate: float = NEGATIVE_RATE
                  ) -> list[tuple[int, int, float]]:
    """(class, start time, score) ratings of one video, start times ascending."""
    vocabulary = np.asarray(segment_class_ids())
    own = [label for label in labels if label in set(vocabulary.tolist())]
    others = np.setdiff1d(vocabulary, labels)
    starts = np.arange(0, num_frames, segment_size)
    chosen = np.sort(rng.choice(starts, size=min(ratings_per_video, len(starts)),
                                replace=False))
    ratings = []
    for start in chosen:
        if not own or rng.random() < negative_rate:
            ratings.append((int(rng.choice(others)), int(start), 0.0))
        else:
            score = 1.0 if rng.random() < positive_rate else 0.0
            ratings.append((int(rng.choice(own)), int(start), score))
    return ratings


def rated_video(record: bytes, path: str, rng: np.random.Generator, segment_size: int,
                ratings_per_video: int) -> bytes:
    """One serialized frame-level SequenceExample of `path` with ratings in its context."""
    import tensorflow as tf

    frame_name = next(iter(FRAME_LEVEL_FEATURES))
    video = tf.train.SequenceExample.FromString(record)
    frames = video.feature_lists.feature_list
    if frame_name not in frames:
        raise PreflightError(f"{path}: not frame-level data (no {frame_name!r} feature list)")
    labels = list(video.context.feature[LABELS_KEY].int64_list.value)
    ratings = rate_segments(labels, len(frames[frame_name].feature), rng, segment_size,
                            ratings_per_video)
    context = video.context.feature
    context[SEGMENT_LABELS_KEY].int64_list.value[:] = [r[0] for r in ratings]
    context[SEGMENT_START_TIMES_KEY].int64_list.value[:] = [r[1] for r in ratings]
    context[SEGMENT_SCORES_KEY].float_list.value[:] = [r[2] for r in ratings]
    return video.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_pattern", required=True, help="frame-level shards (glob)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--segment_size", type=int, default=SEGMENT_SIZE)
    parser.add_argument("--ratings_per_video", type=int, default=RATINGS_PER_VIDEO)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    try:
        if args.segment_size < 1 or args.ratings_per_video < 1:
            raise PreflightError("--segment_size and --ratings_per_video must be positive")
        total, shards = rewrite_shards(
            args.input_pattern, args.output_dir,
            lambda record, path: rated_video(record, path, rng, args.segment_size,
                                             args.ratings_per_video), "segment ratings")
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {total} segment-rated videos in {shards} shards to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
