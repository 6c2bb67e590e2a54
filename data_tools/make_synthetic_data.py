"""Seeded synthetic YouTube-8M data with a planted, learnable signal, for scale tests and
benchmarks: any number of shards and videos, video-level or frame-level.

Each class has a random prototype feature vector; a video's features are the mean of its
labels' prototypes plus noise, so a model can learn the labels back. Label counts (1–5) and
class frequencies (Zipf-like, as in the real dataset) mimic YouTube-8M. Output is a data root
(`train/`, `validate/`) that `make run-local DATA_ROOT=…` accepts.

    python -m data_tools.make_synthetic_data --output_dir=build/synthetic --train_shards=8 \
        --videos_per_shard=1000 [--frame_features]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from data_tools.checks import PreflightError
from shards.files import written_atomically
from trainer_module.features import NUM_CLASSES_2018
from trainer_module.frames import REAL_MAX_FRAMES, REAL_MIN_FRAMES

FEATURE_SIZES = {"mean_rgb": 1024, "mean_audio": 128}
MAX_LABELS_PER_VIDEO = 5


def class_prototypes(seed: int, num_classes: int) -> np.ndarray:
    """[num_classes, 1152] prototype features; the planted signal of a dataset's seed."""
    rng = np.random.default_rng([seed, 0])
    return rng.normal(0.0, 0.6, (num_classes, sum(FEATURE_SIZES.values())))


def class_frequencies(num_classes: int) -> np.ndarray:
    weights = 1.0 / (np.arange(num_classes) + 10.0)
    return weights / weights.sum()


def synthetic_video(video_id: str, rng: np.random.Generator, prototypes: np.ndarray,
                    frequencies: np.ndarray, noise: float = 0.3):
    """A video-level tf.train.Example with `id`, `labels`, `mean_rgb`, `mean_audio`."""
    import tensorflow as tf

    num_labels = int(rng.integers(1, MAX_LABELS_PER_VIDEO + 1))
    labels = np.sort(rng.choice(len(prototypes), num_labels, replace=False, p=frequencies))
    values = prototypes[labels].mean(axis=0) + rng.normal(0.0, noise, prototypes.shape[1])
    values = np.clip(values, -2.0, 2.0).astype(np.float32)
    rgb, audio = np.split(values, [FEATURE_SIZES["mean_rgb"]])
    feature = {
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video_id.encode()])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels.tolist())),
        "mean_rgb": tf.train.Feature(float_list=tf.train.FloatList(value=rgb)),
        "mean_audio": tf.train.Feature(float_list=tf.train.FloatList(value=audio)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_shard(path: str, shard_seed: list[int], num_videos: int, prototypes: np.ndarray,
                frame_features: bool, min_frames: int, max_frames: int, progress) -> None:
    """Writes one shard atomically (under a temporary name until complete)."""
    import tensorflow as tf

    from trainer_module.frames import sequence_example_from_video

    # Separate streams, so that frame-level data holds the same videos as video-level data.
    video_rng = np.random.default_rng([*shard_seed, 0])
    frame_rng = np.random.default_rng([*shard_seed, 1])
    frequencies = class_frequencies(len(prototypes))
    prefix = os.path.splitext(os.path.basename(path))[0]
    with written_atomically(path) as partial:
        with tf.io.TFRecordWriter(partial) as writer:
            for index in range(num_videos):
                video = synthetic_video(f"{prefix}-{index:06d}", video_rng, prototypes,
                                        frequencies)
                if frame_features:
                    video = sequence_example_from_video(video, frame_rng, min_frames, max_frames)
                writer.write(video.SerializeToString(deterministic=True))
                progress.update(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--train_shards", type=int, default=4)
    parser.add_argument("--validate_shards", type=int, default=1)
    parser.add_argument("--videos_per_shard", type=int, default=1000)
    parser.add_argument("--validate_videos_per_shard", type=int,
                        help="videos in each validate shard (default: --videos_per_shard)")
    parser.add_argument("--num_classes", type=int, default=NUM_CLASSES_2018)
    parser.add_argument("--frame_features", action="store_true",
                        help="frame-level SequenceExamples instead of video-level Examples")
    parser.add_argument("--min_frames", type=int, default=REAL_MIN_FRAMES)
    parser.add_argument("--max_frames", type=int, default=REAL_MAX_FRAMES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    if args.validate_videos_per_shard is None:
        args.validate_videos_per_shard = args.videos_per_shard
    try:
        for flag in ("train_shards", "validate_shards", "videos_per_shard",
                     "validate_videos_per_shard", "num_classes"):
            if getattr(args, flag) < (1 if flag != "validate_shards" else 0):
                raise PreflightError(f"--{flag} must be positive, got {getattr(args, flag)}")
        if not 1 <= args.min_frames <= args.max_frames:
            raise PreflightError("need 1 <= --min_frames <= --max_frames")
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    prototypes = class_prototypes(args.seed, args.num_classes)
    splits = (("train", args.train_shards, args.videos_per_shard),
              ("validate", args.validate_shards, args.validate_videos_per_shard))
    total = sum(shards * videos for _, shards, videos in splits)
    with tqdm(total=total, unit=" videos", desc="synthetic shards", file=sys.stderr) as bar:
        for split, shards, videos_per_shard in splits:
            os.makedirs(os.path.join(args.output_dir, split), exist_ok=True)
            for shard in range(shards):
                path = os.path.join(args.output_dir, split, f"{split}{shard:04d}.tfrecord")
                write_shard(path, [args.seed, 1 + (split == "validate"), shard],
                            videos_per_shard, prototypes, args.frame_features,
                            args.min_frames, args.max_frames, bar)
    print(f"wrote {total} {'frame' if args.frame_features else 'video'}-level videos to "
          f"{args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
