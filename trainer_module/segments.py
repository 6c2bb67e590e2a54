"""Segment-level YouTube-8M (the 2019 task): 5-second segments of frame-level videos.

The 2019 segment-rated SequenceExamples keep the frame-level features and add, in the
context, one triple per human rating: `segment_labels` (class), `segment_start_times`
(first frame of the rated segment) and `segment_scores` (1: the class is in the segment,
0: it is not). As in the starter code's `YT8MFrameFeatureReader(segment_labels=True)`:
- each rated start time is one example of `segment_size` frames; its labels are the scores
  of the classes rated there, and `label_weights` is 1 for those classes, 0 for the others
  (which nobody rated: neither positive nor negative);
- every video is also cut into consecutive segments (starts 0, 5, 10, … below its frame
  count) for inference, each named `"<video id>:<start>"` (the starter's inference.py).

A segment has `min(segment_size, num_frames - start)` real frames (the last one may be
short, as in the starter's inference); the models see that count as `num_frames`.
Only the 1,000 classes of `segment_label_ids.csv` (google/youtube-8m) were rated.
"""

from __future__ import annotations

import csv
import functools
import os

import numpy as np
import tensorflow as tf

from contract.saved_model import (
    SEGMENT_IDS_OUTPUT,
    SEGMENT_SCORES_OUTPUT,
    SEGMENT_START_TIMES_OUTPUT,
    UNRATED,
)
from trainer_module.features import NUM_FRAMES_KEY, FeatureSpec

SEGMENT_LABELS_KEY = "segment_labels"
SEGMENT_START_TIMES_KEY = "segment_start_times"
SEGMENT_SCORES_KEY = "segment_scores"
SEGMENT_CONTEXT_KEYS = (SEGMENT_LABELS_KEY, SEGMENT_START_TIMES_KEY, SEGMENT_SCORES_KEY)
LABEL_WEIGHTS_KEY = "label_weights"  # the starter's name for the rated-classes mask
SEGMENT_SIZE = 5  # the starter's --segment_size, the 2019 data's 5 seconds
SEGMENT_MAX_PRED = 100_000  # the starter's --segment_max_pred, the competition's K
SEGMENT_VOCABULARY_CSV = os.path.join(os.path.dirname(__file__), "segment_label_ids.csv")
# Start times are packed with their video's row in one int64 (row * this + start).
_START_TIME_RANGE = 1 << 32


@functools.cache
def segment_class_ids(path: str = SEGMENT_VOCABULARY_CSV) -> tuple[int, ...]:
    """The rated classes, ascending: `segment_label_ids.csv` (a header `Index`, one id a line)."""
    with open(path, newline="") as f:
        rows = [row[0] for row in csv.reader(f) if row]
    if rows[:1] != ["Index"]:
        raise ValueError(f"{path}: the first line must be 'Index'")
    return tuple(sorted(int(value) for value in rows[1:]))


def rated_segments(parsed: dict[str, tf.Tensor], spec: FeatureSpec, num_classes: int,
                   segment_size: int = SEGMENT_SIZE
                   ) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """One example per distinct rated start time of each video in a parsed batch.

    `parsed` is `reader.parse_frame_examples(..., with_segments=True)`'s output. Returns the
    segments' model inputs (frames [n, segment_size, size] and `num_frames` [n]), their
    labels [n, num_classes] (the rated scores) and `label_weights` [n, num_classes] (1 where
    rated). A (segment, class) rated twice keeps the higher score.
    """
    starts = parsed[SEGMENT_START_TIMES_KEY]
    video_rows = starts.indices[:, 0]
    keys, rating_segment = tf.unique(video_rows * _START_TIME_RANGE + starts.values,
                                     out_idx=tf.int64)
    rows, start_times = keys // _START_TIME_RANGE, keys % _START_TIME_RANGE
    features = _segment_inputs(parsed, spec, rows, start_times, segment_size)
    indices = tf.stack([rating_segment, parsed[SEGMENT_LABELS_KEY].values], axis=1)
    shape = tf.stack([tf.size(keys, out_type=tf.int64), tf.constant(num_classes, tf.int64)])
    scores = parsed[SEGMENT_SCORES_KEY].values
    labels = tf.tensor_scatter_nd_max(tf.zeros(shape, tf.float32), indices, scores)
    weights = tf.tensor_scatter_nd_max(tf.zeros(shape, tf.float32), indices,
                                       tf.ones_like(scores))
    return features, labels, weights


def all_segments(parsed: dict[str, tf.Tensor], spec: FeatureSpec,
                 segment_size: int = SEGMENT_SIZE) -> dict[str, tf.Tensor]:
    """Every segment of every video in a parsed batch, as inference scores them.

    Returns the segments' model inputs, their video's row `video_row` [n] and `start_time`
    [n], in video order and, within a video, by start time.
    """
    rows, start_times = segment_starts(parsed[NUM_FRAMES_KEY], segment_size)
    features = _segment_inputs(parsed, spec, rows, start_times, segment_size)
    return {**features, "video_row": rows, "start_time": start_times}


def segment_starts(num_frames: tf.Tensor, segment_size: int = SEGMENT_SIZE
                   ) -> tuple[tf.Tensor, tf.Tensor]:
    """(video row, start time) of every segment of videos of `num_frames` frames: starts
    0, segment_size, … below each count, in video order, then by start time."""
    num_frames = tf.cast(num_frames, tf.int64)
    longest = tf.reduce_max(tf.concat([num_frames, [0]], 0))
    starts = tf.range(0, longest, segment_size, dtype=tf.int64)
    where = tf.where(starts[None, :] < num_frames[:, None])  # [videos, segment slots]
    return where[:, 0], tf.gather(starts, where[:, 1])


def _segment_inputs(parsed: dict[str, tf.Tensor], spec: FeatureSpec, rows: tf.Tensor,
                    start_times: tf.Tensor, segment_size: int) -> dict[str, tf.Tensor]:
    """The frame codes [n, segment_size, size] from `start_times` of the videos in `rows`
    and their real frame counts (at least 1), past which the model masks them."""
    video_frames = tf.gather(tf.cast(parsed[NUM_FRAMES_KEY], tf.int64), rows)
    offsets = tf.range(segment_size, dtype=tf.int64)
    times = start_times[:, None] + offsets[None, :]  # [n, segment_size]
    segment_frames = tf.clip_by_value(video_frames - start_times, 1, segment_size)
    features = {NUM_FRAMES_KEY: tf.cast(segment_frames, tf.int32)}
    for name, size in spec.items():
        frames = parsed[name]
        last = tf.maximum(tf.shape(frames, out_type=tf.int64)[1] - 1, 0)
        index = tf.stack([tf.broadcast_to(rows[:, None], tf.shape(times)),
                          tf.minimum(times, last)], axis=-1)
        gathered = tf.gather_nd(frames, index)
        gathered.set_shape([None, segment_size, size])
        features[name] = gathered
    return features


def class_columns(num_classes: int) -> np.ndarray:
    """The score columns of the rated classes within a model's `num_classes` outputs."""
    ids = np.asarray(segment_class_ids())
    if ids[-1] >= num_classes:
        raise ValueError(f"the segment vocabulary has class {ids[-1]}, outside the "
                         f"{num_classes} classes of the model")
    return ids




def score_segments(model, parsed: dict[str, tf.Tensor], spec: FeatureSpec,
                   video_ids: tf.Tensor, segment_size: int,
                   columns: np.ndarray) -> dict[str, tf.Tensor]:
    """Every segment of a parsed batch scored by `model` (a callable on model inputs), one
    row a segment: ids `<video id>:<start>`, start times, the video's row in the batch and
    the scores of the `columns` classes."""
    segments = all_segments(parsed, spec, segment_size)
    rows, starts = segments.pop("video_row"), segments.pop("start_time")
    scores = model(segments)
    ids = tf.strings.join([tf.gather(video_ids, rows), tf.strings.as_string(starts)], ":")
    return {SEGMENT_IDS_OUTPUT: ids, SEGMENT_START_TIMES_OUTPUT: starts, "video_row": rows,
            SEGMENT_SCORES_OUTPUT: tf.gather(scores, columns, axis=1)}


def segment_ratings(parsed: dict[str, tf.Tensor], rows: tf.Tensor, starts: tf.Tensor,
                    columns: np.ndarray) -> tf.Tensor:
    """The ratings [n, len(columns)] of the segments at (`rows`, `starts`) (ascending, as
    `all_segments` lists them), UNRATED where nobody rated; ratings at start times that
    begin no segment match none (as in the starter's evaluation)."""
    keys = rows * _START_TIME_RANGE + starts
    rated = parsed[SEGMENT_START_TIMES_KEY]
    rated_keys = rated.indices[:, 0] * _START_TIME_RANGE + rated.values
    position = tf.searchsorted(keys, rated_keys, out_type=tf.int64)
    # A key past the last segment finds the sentinel -1, which no rating has.
    found = tf.gather(tf.concat([keys, [-1]], 0), position)
    # Class id → column; classes outside the vocabulary (-1) are dropped too.
    column_of = np.full(int(columns[-1]) + 1, -1, np.int64)
    column_of[columns] = np.arange(len(columns))
    labels = parsed[SEGMENT_LABELS_KEY].values
    in_vocabulary = (labels >= 0) & (labels < len(column_of))
    label_columns = tf.gather(column_of, tf.clip_by_value(labels, 0, len(column_of) - 1))
    keep = (found == rated_keys) & in_vocabulary & (label_columns >= 0)
    indices = tf.stack([tf.boolean_mask(position, keep),
                        tf.boolean_mask(label_columns, keep)], axis=1)
    shape = tf.stack([tf.size(keys, out_type=tf.int64), tf.constant(len(columns), tf.int64)])
    scores = tf.boolean_mask(parsed[SEGMENT_SCORES_KEY].values, keep)
    return tf.tensor_scatter_nd_max(tf.fill(shape, UNRATED), indices, scores)


def by_video(values: tf.Tensor, rows: tf.Tensor, starts: tf.Tensor, num_videos: tf.Tensor,
             segment_size: int, fill) -> tf.Tensor:
    """Per-segment `values` [n, …] laid out [videos, most segments of a video, …], each at
    its start time's slot; `fill` elsewhere."""
    slots = starts // segment_size
    width = tf.reduce_max(tf.concat([slots + 1, [0]], 0))
    shape = tf.concat([tf.stack([tf.cast(num_videos, tf.int64), width]),
                       tf.shape(values, out_type=tf.int64)[1:]], 0)
    indices = tf.stack([rows, slots], axis=1)
    return tf.tensor_scatter_nd_update(tf.fill(shape, tf.cast(fill, values.dtype)), indices,
                                       values)
