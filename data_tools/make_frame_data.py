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
import os
import sys

import numpy as np

from data_tools.checks import PreflightError
from shards.files import expand_pattern, written_atomically
from trainer_module.frames import REAL_MAX_FRAMES, REAL_MIN_FRAMES


def convert_shard(input_path: str, output_path: str, rng: np.random.Generator,
                  min_frames: int, max_frames: int, progress) -> int:
    """Writes `output_path` atomically (via a temporary name); returns the video count."""
    import tensorflow as tf

    from trainer_module.frames import sequence_example_from_video

    count = 0
    with written_atomically(output_path) as partial:
        with tf.io.TFRecordWriter(partial) as writer:
            for record in tf.data.TFRecordDataset(input_path):
                video = tf.train.Example.FromString(record.numpy())
                if "mean_rgb" not in video.features.feature:
                    raise PreflightError(
                        f"{input_path}: not video-level data (no 'mean_rgb' feature)")
                writer.write(sequence_example_from_video(
                    video, rng, min_frames, max_frames).SerializeToString())
                count += 1
                progress.update(1)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_pattern", required=True, help="video-level shards (glob)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--min_frames", type=int, default=REAL_MIN_FRAMES)
    parser.add_argument("--max_frames", type=int, default=REAL_MAX_FRAMES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    try:
        if not 1 <= args.min_frames <= args.max_frames:
            raise PreflightError("need 1 <= --min_frames <= --max_frames")
        inputs = expand_pattern(args.input_pattern)
        if not inputs:
            raise PreflightError(f"--input_pattern {args.input_pattern} matches no files")
        os.makedirs(args.output_dir, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        with tqdm(unit=" videos", desc="frame-level shards", file=sys.stderr) as progress:
            total = sum(
                convert_shard(path, os.path.join(args.output_dir, os.path.basename(path)),
                              rng, args.min_frames, args.max_frames, progress)
                for path in inputs)
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {total} frame-level videos in {len(inputs)} shards to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
