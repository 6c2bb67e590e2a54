"""Frame-level features: the dataset's 8-bit quantization, and realistic frame synthesis.

YouTube-8M stores each second's rgb (1024) and audio (128) features as uint8 bytes,
quantized over [-2, 2]: value = q * 4/255 + 4/512 - 2.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer_module.features import LABELS_KEY, VIDEO_ID_KEYS

QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
_SCALE = (QUANTIZE_MAX - QUANTIZE_MIN) / 255.0
_BIAS = _SCALE / 2 * 255.0 / 256.0 + QUANTIZE_MIN  # 4/512 - 2
DEQUANTIZED_MIN, DEQUANTIZED_MAX = _BIAS, 255 * _SCALE + _BIAS


def dequantize(quantized: tf.Tensor) -> tf.Tensor:
    """uint8 codes → float32 features, exactly as the dataset was quantized."""
    return tf.cast(quantized, tf.float32) * _SCALE + _BIAS


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


def synthesize_frames(video_mean: np.ndarray, num_frames: int, rng: np.random.Generator,
                      spread: float = 0.35) -> np.ndarray:
    """uint8 frames [num_frames, dims] whose dequantized mean reproduces `video_mean`.

    Frames vary around the mean the way videos do: a few shots (piecewise-constant offsets)
    plus slowly drifting AR(1) noise. Per dimension the variation is scaled down where the
    mean is near the quantization range's edge, so no frame is clipped and the mean holds.
    """
    dims = video_mean.shape[0]
    num_shots = int(rng.integers(1, max(2, num_frames // 20) + 1))
    shot_of_frame = np.sort(rng.integers(0, num_shots, num_frames))
    shot_offsets = rng.normal(0, spread, (num_shots, dims))
    drift = np.empty((num_frames, dims))
    drift[0] = rng.normal(0, spread / 2, dims)
    for t in range(1, num_frames):
        drift[t] = 0.9 * drift[t - 1] + rng.normal(0, spread / 4, dims)
    deviation = shot_offsets[shot_of_frame] + drift
    deviation -= deviation.mean(axis=0)

    mean = np.clip(video_mean, DEQUANTIZED_MIN, DEQUANTIZED_MAX)
    with np.errstate(divide="ignore", invalid="ignore"):
        room_up = np.where(deviation.max(0) > 0, (DEQUANTIZED_MAX - mean) / deviation.max(0), 1)
        room_down = np.where(deviation.min(0) < 0, (mean - DEQUANTIZED_MIN) / -deviation.min(0), 1)
    amplitude = np.clip(np.minimum(room_up, room_down), 0, 1)
    return _error_diffused_quantize(mean + amplitude * deviation)


VIDEO_TO_FRAME_FEATURES = {"mean_rgb": "rgb", "mean_audio": "audio"}


def sequence_example_from_video(video: tf.train.Example, rng: np.random.Generator,
                                min_frames: int = 60, max_frames: int = 300
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
