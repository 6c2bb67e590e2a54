"""Makes realistic frame-level SequenceExamples from real video-level YouTube-8M shards.

Each output video keeps the input's id and labels, and its quantized `rgb`/`audio` frames
average to the input's `mean_rgb`/`mean_audio`; by default they are as long, as noisy and as
often saturated as real 2018 frames (see trainer_module.frames and data_tools.frame_stats).
One output shard per input shard, same file name.

    python -m data_tools.make_frame_data --input_pattern='data/sample/video/train/*.tfrecord' \
        --output_dir=build/frame_sample/train
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from data_tools.checks import PreflightError
from data_tools.shard_rewrite import rewrite_shards
from trainer_module.frames import REAL_MAX_FRAMES, REAL_MIN_FRAMES


def frame_level_video(record: bytes, path: str, rng: np.random.Generator, min_frames: int,
                      max_frames: int) -> bytes:
    """The frame-level SequenceExample of one serialized video-level Example of `path`."""
    import tensorflow as tf

    from trainer_module.frames import sequence_example_from_video

    video = tf.train.Example.FromString(record)
    if "mean_rgb" not in video.features.feature:
        raise PreflightError(f"{path}: not video-level data (no 'mean_rgb' feature)")
    return sequence_example_from_video(video, rng, min_frames, max_frames).SerializeToString()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_pattern", required=True, help="video-level shards (glob)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--min_frames", type=int, default=REAL_MIN_FRAMES)
    parser.add_argument("--max_frames", type=int, default=REAL_MAX_FRAMES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    try:
        if not 1 <= args.min_frames <= args.max_frames:
            raise PreflightError("need 1 <= --min_frames <= --max_frames")
        total, shards = rewrite_shards(
            args.input_pattern, args.output_dir,
            lambda record, path: frame_level_video(record, path, rng, args.min_frames,
                                                   args.max_frames), "frame-level shards")
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {total} frame-level videos in {shards} shards to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
