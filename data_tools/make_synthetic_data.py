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
_LABEL_DRAWS = 16  # candidate labels drawn per video at once


def class_prototypes(seed: int, num_classes: int) -> np.ndarray:
    """[num_classes, 1152] prototype features; the planted signal of a dataset's seed."""
    rng = np.random.default_rng([seed, 0])
    return rng.normal(0.0, 0.6, (num_classes, sum(FEATURE_SIZES.values())))


def class_frequencies(num_classes: int) -> np.ndarray:
    weights = 1.0 / (np.arange(num_classes) + 10.0)
    return weights / weights.sum()


def synthetic_videos(rng: np.random.Generator, prototypes: np.ndarray,
                     frequencies: np.ndarray, count: int, noise: float = 0.3
                     ) -> tuple[list[np.ndarray], np.ndarray]:
    """`count` videos' sorted label ids and float32 features [count, 1152]: 1–5 distinct
    labels drawn by `frequencies` without replacement (draws repeating an earlier label are
    dropped, which is what drawing from the renormalized rest means), features the mean of
    the labels' prototypes plus noise, clipped to the dataset's [-2, 2]."""
    num_labels = rng.integers(1, MAX_LABELS_PER_VIDEO + 1, count)
    cdf = np.cumsum(frequencies)

    def draw(size):
        return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"),
                          len(cdf) - 1)

    chosen = np.zeros((count, MAX_LABELS_PER_VIDEO), np.int64)
    labels = []
    for row, (draws, wanted) in enumerate(zip(draw((count, _LABEL_DRAWS)), num_labels,
                                              strict=True)):
        distinct = list(dict.fromkeys(draws.tolist()))
        while len(distinct) < wanted:  # 16 draws nearly always hold 5 distinct classes
            distinct = list(dict.fromkeys([*distinct, *draw(_LABEL_DRAWS).tolist()]))
        chosen[row, :wanted] = distinct[:wanted]
        labels.append(np.sort(chosen[row, :wanted]))
    weights = (np.arange(MAX_LABELS_PER_VIDEO)[None, :] < num_labels[:, None]) / num_labels[
        :, None]
    values = np.einsum("vl,vlf->vf", weights, prototypes[chosen])
    values += rng.normal(0.0, noise, values.shape)
    return labels, np.clip(values, -2.0, 2.0).astype(np.float32)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def serialized_example(video_id: str, labels: np.ndarray, values: np.ndarray) -> bytes:
    """The video-level tf.train.Example (`id`, `labels`, `mean_rgb`, `mean_audio`) serialized
    in protobuf's wire format (tensorflow/core/example/{example,feature}.proto) without building
    the message: ~100x faster in Python, which matters at millions of videos.
    tests/test_synthetic_data.py parses it back with protobuf."""
    rgb, audio = np.split(values.astype("<f4"), [FEATURE_SIZES["mean_rgb"]])
    features = {
        "id": _field(1, _field(1, video_id.encode())),  # Feature.bytes_list (1)
        "labels": _field(3, _field(1, b"".join(_varint(int(i)) for i in labels))),  # int64_list
        "mean_rgb": _field(2, _field(1, rgb.tobytes())),  # Feature.float_list (2), packed
        "mean_audio": _field(2, _field(1, audio.tobytes())),
    }
    entries = b"".join(_field(1, _field(1, key.encode()) + _field(2, value))
                       for key, value in features.items())  # Features.feature map (1)
    return _field(1, entries)  # Example.features (1)


def write_shard(path: str, shard_seed: list[int], num_videos: int, prototypes: np.ndarray,
                frame_features: bool, min_frames: int, max_frames: int, progress) -> None:
    """Writes one shard atomically (under a temporary name until complete)."""
    import tensorflow as tf

    from trainer_module.frames import sequence_example_from_video

    # Separate streams, so that frame-level data holds the same videos as video-level data.
    video_rng = np.random.default_rng([*shard_seed, 0])
    frame_rng = np.random.default_rng([*shard_seed, 1])
    labels, values = synthetic_videos(video_rng, prototypes, class_frequencies(len(prototypes)),
                                      num_videos)
    prefix = os.path.splitext(os.path.basename(path))[0]
    with written_atomically(path) as partial:
        with tf.io.TFRecordWriter(partial) as writer:
            for index in range(num_videos):
                record = serialized_example(f"{prefix}-{index:06d}", labels[index],
                                            values[index])
                if frame_features:
                    record = sequence_example_from_video(
                        tf.train.Example.FromString(record), frame_rng, min_frames,
                        max_frames).SerializeToString(deterministic=True)
                writer.write(record)
                progress.update(1)


def shard_seed(seed: int, split: str, shard: int) -> list[int]:
    """The seed of one shard: shards are independent, so any subset can be (re)written."""
    return [seed, 1 + (split == "validate"), shard]


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
                write_shard(path, shard_seed(args.seed, split, shard),
                            videos_per_shard, prototypes, args.frame_features,
                            args.min_frames, args.max_frames, bar)
    print(f"wrote {total} {'frame' if args.frame_features else 'video'}-level videos to "
          f"{args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
