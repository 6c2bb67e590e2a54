"""The frames of a batch of serialized tf.SequenceExamples, copied in one pass from the
records' bytes into one padded uint8 array per feature: the C++ op in ops/frame_records.cc.

`tf.io.parse_sequence_example` makes one string per frame (~60 k for a batch of 256 real
videos), and `decode_raw` and the padding gather copy every frame twice more: the frame reader
ran at 0.34–0.62× the raw read (bench/README.md, issue #33). The op walks each record's wire
format once and copies each frame once, into the batch's padded array.

env.Dockerfile builds the op into the environment image (and so into the release image
Kubeflow pods run) and names it in YT8M_TFX_FRAME_RECORDS_OP. Where that variable is not set
(a Python environment of one's own), the reader falls back to TensorFlow's parser and says so
once. The SavedModel's signatures always use TensorFlow's parser: TF Serving cannot load this
op.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable

import tensorflow as tf

FRAME_RECORDS_OP_VARIABLE = "YT8M_TFX_FRAME_RECORDS_OP"


@functools.cache
def _decode_frame_records() -> Callable | None:
    path = os.environ.get(FRAME_RECORDS_OP_VARIABLE)
    if not path:
        logging.warning("%s is not set: frames are read with TensorFlow's parser (~2x slower "
                        "than trainer_module/ops/frame_records.cc, built by env.Dockerfile)",
                        FRAME_RECORDS_OP_VARIABLE)
        return None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{FRAME_RECORDS_OP_VARIABLE}={path}: no such file")
    return tf.load_op_library(path).decode_frame_records


def has_frame_records_op() -> bool:
    """Whether this environment has the one-pass frame op (else decode_frame_records is
    unavailable and readers parse with TensorFlow's ops)."""
    return _decode_frame_records() is not None


def decode_frame_records(serialized: tf.Tensor, names: tuple[str, ...], sizes: tuple[int, ...],
                         max_frames: int) -> tuple[list[tf.Tensor], tf.Tensor]:
    """The uint8 frame codes [batch, min(longest video, max_frames), size] of each named
    feature, and `num_frames` int32 [batch] (at most `max_frames`), of a batch of serialized
    SequenceExamples. Frames past a video's `num_frames` repeat its last frame. Raises
    InvalidArgumentError naming the feature when a frame is not `size` bytes or a video has
    fewer or more frames of it than of names[0]."""
    codes, num_frames = _decode_frame_records()(
        serialized, feature_names=list(names), feature_sizes=list(sizes),
        num_features=len(names), max_frames=max_frames)
    return list(codes), num_frames
