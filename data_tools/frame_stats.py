"""Statistics of frame-level shards, side by side for any sets of shards: how long videos
are and how their frames move, the numbers the synthetic frames are calibrated to.

    python -m data_tools.frame_stats 'data/sample/frame/*/*.tfrecord' 'build/frame_sample/*/*'

- frames per video (min / median / max);
- lag-1 correlation of consecutive frames, each video centred on its mean (median of videos);
- within-video standard deviation per dimension, dequantized (mean over videos and dims);
- share of 8-bit codes at 0 or 255 (saturated);
- entropy of the 8-bit codes, in bits.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable

import numpy as np

from data_tools.checks import PreflightError
from shards.files import expand_pattern, written_atomically

FRAME_FEATURES = ("rgb", "audio")
STATISTICS = {  # name: (title, format)
    "frames": ("frames per video (min / median / max)", "{0:.0f} / {1:.0f} / {2:.0f}"),
    "lag1_correlation": ("lag-1 correlation of consecutive centred frames (median)", "{:.2f}"),
    "within_video_std": ("within-video std per dimension (mean)", "{:.2f}"),
    "saturation": ("codes at 0 or 255 (saturated)", "{:.1%}"),
    "entropy_bits": ("entropy of the 8-bit codes", "{:.2f} bits"),
}


def video_codes(paths: Iterable[str]) -> Iterable[np.ndarray]:
    """Each video's uint8 codes, [frames, rgb + audio dims]."""
    import tensorflow as tf

    for path in paths:
        for record in tf.data.TFRecordDataset(path):
            lists = tf.train.SequenceExample.FromString(record.numpy()).feature_lists
            missing = [name for name in FRAME_FEATURES if name not in lists.feature_list]
            if missing:
                raise PreflightError(f"{path}: not frame-level data (no {missing[0]!r} frames)")
            yield np.concatenate([
                np.stack([np.frombuffer(frame.bytes_list.value[0], np.uint8)
                          for frame in lists.feature_list[name].feature])
                for name in FRAME_FEATURES], axis=1)


def lag1_correlation(frames: np.ndarray) -> float:
    """Correlation of each frame with the next, the video centred on its mean per dimension."""
    centred = frames - frames.mean(axis=0)
    return float(np.corrcoef(centred[:-1].ravel(), centred[1:].ravel())[0, 1])


def frame_statistics(videos: Iterable[np.ndarray]) -> dict:
    """The STATISTICS of a set of videos' uint8 codes."""
    from trainer_module.frames import dequantize_numpy

    lengths, correlations, stds = [], [], []
    histogram = np.zeros(256, np.int64)
    for codes in videos:
        frames = dequantize_numpy(codes)
        lengths.append(len(codes))
        if len(codes) > 1:
            correlations.append(lag1_correlation(frames))
        stds.append(frames.std(axis=0).mean())
        histogram += np.bincount(codes.ravel(), minlength=256)
    if not lengths:
        raise PreflightError("no videos")
    shares = histogram / histogram.sum()
    nonzero = shares[shares > 0]
    return {"videos": len(lengths),
            "frames": (min(lengths), float(np.median(lengths)), max(lengths)),
            "lag1_correlation": float(np.median(correlations)) if correlations else float("nan"),
            "within_video_std": float(np.mean(stds)),
            "saturation": float(shares[0] + shares[255]),
            "entropy_bits": float(-(nonzero * np.log2(nonzero)).sum())}


def table(named_statistics: dict[str, dict]) -> str:
    """A markdown table with one column per set of shards."""
    names = list(named_statistics)
    lines = ["| statistic | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
             "| videos | " + " | ".join(str(s["videos"]) for s in named_statistics.values())
             + " |"]
    for key, (title, template) in STATISTICS.items():
        values = [named_statistics[name][key] for name in names]
        cells = [template.format(*v) if isinstance(v, tuple) else template.format(v)
                 for v in values]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="+", help="one glob of frame-level shards per set")
    parser.add_argument("--json", help="also write the statistics here, keyed by pattern")
    args = parser.parse_args(argv)
    try:
        statistics = {}
        for pattern in args.patterns:
            paths = expand_pattern(pattern)
            if not paths:
                raise PreflightError(f"{pattern} matches no files")
            statistics[pattern] = frame_statistics(video_codes(paths))
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table(statistics))
    if args.json:
        with written_atomically(args.json) as partial, open(partial, "w") as f:
            json.dump(statistics, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
