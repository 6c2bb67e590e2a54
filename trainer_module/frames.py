"""Frame-level features: the dataset's 8-bit quantization, and realistic frame synthesis.

YouTube-8M stores each second's rgb (1024) and audio (128) features as uint8 bytes,
quantized over [-2, 2]: value = q * 4/255 + 4/512 - 2.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer_module.features import (
    FRAME_LEVEL_FEATURES,
    LABELS_KEY,
    VIDEO_ID_KEYS,
    VIDEO_LEVEL_FEATURES,
)

QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
_SCALE = (QUANTIZE_MAX - QUANTIZE_MIN) / 255.0
_BIAS = _SCALE / 2 * 255.0 / 256.0 + QUANTIZE_MIN  # 4/512 - 2
DEQUANTIZED_MIN, DEQUANTIZED_MAX = _BIAS, 255 * _SCALE + _BIAS


def dequantize(quantized: tf.Tensor) -> tf.Tensor:
    """uint8 codes → float32 features, exactly as the dataset was quantized."""
    return tf.cast(quantized, tf.float32) * _SCALE + _BIAS


def dequantize_numpy(codes: np.ndarray) -> np.ndarray:
    """`dequantize` in numpy, for data tools that read frames without a TF graph."""
    return np.asarray(codes, np.float32) * np.float32(_SCALE) + np.float32(_BIAS)


def quantize(values: np.ndarray) -> np.ndarray:
    """float features → nearest uint8 codes (values outside the range are clipped)."""
    return np.clip(np.round((np.asarray(values) - _BIAS) / _SCALE), 0, 255).astype(np.uint8)


def _error_diffused_quantize(frames: np.ndarray) -> np.ndarray:
    """Quantizes [frames, dims] so that each dimension's running sum tracks the target's:
    the mean over frames is then kept to within one quantization step / num_frames."""
    codes = np.empty(frames.shape, np.uint8)
    carry = np.zeros(frames.shape[1])
    for t, frame in enumerate(frames):
        wanted = (frame - _BIAS) / _SCALE + carry
        codes[t] = np.clip(np.round(wanted), 0, 255)
        carry = wanted - codes[t]
    return codes


# Real 2018 frames, measured with `python -m data_tools.frame_stats` on 143 real videos: frame
# features are noisy around the video's mean (within-video std 0.90 per dimension, lag-1
# correlation of centred frames 0.44) and 9.5% of the codes sit at 0 or 255.
FRAME_CORRELATION = 0.46  # AR(1) coefficient of each dimension's deviation from the mean
FRAME_SPREAD = 1.0  # std of the deviation before clipping; 0.92 after
# Videos are 119-300 frames long (one per second, at most 300), median 196.
REAL_MIN_FRAMES, REAL_MAX_FRAMES = 120, 300
_MEAN_FIT_STEPS = 12


def synthesize_frames(video_mean: np.ndarray, num_frames: int, rng: np.random.Generator,
                      spread: float = FRAME_SPREAD,
                      correlation: float = FRAME_CORRELATION) -> np.ndarray:
    """uint8 frames [num_frames, dims] whose dequantized mean reproduces `video_mean`.

    Each dimension deviates from the mean as AR(1) noise, and frames saturate at the
    quantization range's edges as real ones do; a per-dimension shift, fitted by Newton
    steps on the clipped values, keeps the mean of what is stored equal to `video_mean`.
    """
    noise = rng.standard_normal((num_frames, video_mean.shape[0]))
    deviation = np.empty_like(noise)
    deviation[0] = noise[0]
    innovation = np.sqrt(1 - correlation**2)
    for t in range(1, num_frames):
        deviation[t] = correlation * deviation[t - 1] + innovation * noise[t]
    mean = np.clip(video_mean, DEQUANTIZED_MIN, DEQUANTIZED_MAX)
    frames = mean + spread * (deviation - deviation.mean(axis=0))
    shift = np.zeros_like(mean)
    for _ in range(_MEAN_FIT_STEPS):
        clipped = np.clip(frames + shift, DEQUANTIZED_MIN, DEQUANTIZED_MAX)
        missing = mean - clipped.mean(axis=0)
        if np.abs(missing).max() < _SCALE / 64:
            break
        # d(mean)/d(shift) is the share of frames not clipped.
        inside = ((clipped > DEQUANTIZED_MIN) & (clipped < DEQUANTIZED_MAX)).mean(axis=0)
        shift += missing / np.maximum(inside, 1 / num_frames)
    return _error_diffused_quantize(np.clip(frames + shift, DEQUANTIZED_MIN, DEQUANTIZED_MAX))


# Each video-level mean and the frame-level feature it averages, in the same order.
VIDEO_TO_FRAME_FEATURES = dict(zip(VIDEO_LEVEL_FEATURES, FRAME_LEVEL_FEATURES, strict=True))


def sequence_example_from_video(video: tf.train.Example, rng: np.random.Generator,
                                min_frames: int = REAL_MIN_FRAMES,
                                max_frames: int = REAL_MAX_FRAMES
                                ) -> tf.train.SequenceExample:
    """A frame-level SequenceExample for a real video-level Example: same id and labels in the
    context, `rgb`/`audio` feature lists of quantized frames whose mean is the video's."""
    features = video.features.feature
    sequence = tf.train.SequenceExample()
    for key in (*VIDEO_ID_KEYS, LABELS_KEY):
        if key in features:
            sequence.context.feature[key].CopyFrom(features[key])
    num_frames = int(rng.integers(min_frames, max_frames + 1))
    for video_name, frame_name in VIDEO_TO_FRAME_FEATURES.items():
        mean = np.asarray(features[video_name].float_list.value, np.float64)
        feature_list = sequence.feature_lists.feature_list[frame_name]
        for frame in synthesize_frames(mean, num_frames, rng):
            feature_list.feature.add().bytes_list.value.append(frame.tobytes())
    return sequence
