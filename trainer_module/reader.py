"""The one batched reader of YouTube-8M TFRecords, used by the Trainer, the CLIs and benchmarks.

Records are batched *before* parsing so that one parse op decodes a whole batch; per-record
parsing is several times slower on these small examples.

- video level: tf.Examples with `mean_rgb`/`mean_audio` floats → dense [batch, size].
- frame level: tf.SequenceExamples with one uint8 byte string per second in the `rgb`/`audio`
  feature lists → the uint8 codes [batch, frames, size], truncated to `max_frames` and padded
  to the longest video of the batch (not to `max_frames`: short videos cost no padding
  compute), plus `num_frames`. The codes stay uint8 up to the model, which dequantizes them
  and zeroes the padding as its first layer (`layers.DequantizedFrames`), on the accelerator
  when there is one: float32 frames would be 4x the bytes through the input pipeline, and
  dequantizing and padding them took ~75% of the reader's time (bench/README.md). In tf.data
  pipelines the frames are copied out of the records in one pass by a C++ op
  (trainer_module.frame_records); the SavedModel's signatures parse with TensorFlow's ops.
"""

from __future__ import annotations

import tensorflow as tf

from contract.saved_model import VIDEO_ID_OUTPUT
from shards.files import compression_of, expand_pattern
from trainer_module.features import (
    DEFAULT_MAX_FRAMES,
    LABELS_KEY,
    NUM_FRAMES_KEY,
    VIDEO_ID_KEYS,
    FeatureSpec,
    multi_hot,
)
from trainer_module.frame_records import decode_frame_records, has_frame_records_op
from trainer_module.segments import (
    LABEL_WEIGHTS_KEY,
    SEGMENT_LABELS_KEY,
    SEGMENT_SCORES_KEY,
    SEGMENT_START_TIMES_KEY,
    rated_segments,
)


def _labels_and_ids_spec(with_labels: bool, with_ids: bool, with_segments: bool = False
                         ) -> dict:
    parse_spec = {LABELS_KEY: tf.io.VarLenFeature(tf.int64)} if with_labels else {}
    if with_segments:
        parse_spec.update({SEGMENT_LABELS_KEY: tf.io.VarLenFeature(tf.int64),
                           SEGMENT_START_TIMES_KEY: tf.io.VarLenFeature(tf.int64),
                           SEGMENT_SCORES_KEY: tf.io.VarLenFeature(tf.float32)})
    if with_ids:
        parse_spec.update({key: tf.io.FixedLenFeature([], tf.string, default_value="")
                           for key in VIDEO_ID_KEYS})
    return parse_spec


def _merge_video_ids(parsed: dict[str, tf.Tensor]) -> None:
    """Replaces the 2018 `id` and 2017 `video_id` keys by one `video_id`: whichever is set."""
    ids = [parsed.pop(key) for key in VIDEO_ID_KEYS]
    merged = ids[0]
    for other in ids[1:]:
        merged = tf.where(merged != "", merged, other)
    parsed[VIDEO_ID_OUTPUT] = merged


def parse_video_examples(serialized: tf.Tensor, spec: FeatureSpec, with_labels: bool = False,
                         with_ids: bool = False) -> dict[str, tf.Tensor]:
    """Parses a batch of serialized tf.Examples into dense features (and sparse labels)."""
    parse_spec = {name: tf.io.FixedLenFeature([size], tf.float32) for name, size in spec.items()}
    parse_spec.update(_labels_and_ids_spec(with_labels, with_ids))
    parsed = tf.io.parse_example(serialized, parse_spec)
    if with_ids:
        _merge_video_ids(parsed)
    return parsed


def parse_frame_examples(serialized: tf.Tensor, spec: FeatureSpec, with_labels: bool = False,
                         max_frames: int = DEFAULT_MAX_FRAMES,
                         with_ids: bool = False,
                         with_segments: bool = False,
                         in_saved_model: bool = True) -> dict[str, tf.Tensor]:
    """Parses a batch of serialized tf.SequenceExamples into uint8 frame codes
    [batch, min(longest video, max_frames), size] and `num_frames` [batch]; `with_segments`
    adds the segment ratings of the context (sparse, trainer_module.segments).

    Frames past a video's `num_frames` repeat its last frame (a gather is cheaper than
    zero-padding); whoever reads them masks by `num_frames`, as the models do.
    `in_saved_model=False` (tf.data pipelines) copies the frames out of the records in one
    pass where the environment has the op (trainer_module.frame_records; TF Serving has not).
    """
    context_spec = _labels_and_ids_spec(with_labels, with_ids, with_segments)
    if not in_saved_model and has_frame_records_op():
        parsed = dict(tf.io.parse_sequence_example(serialized, context_features=context_spec)[0]
                      if context_spec else {})
        codes, parsed[NUM_FRAMES_KEY] = decode_frame_records(serialized, spec.names,
                                                             spec.sizes, max_frames)
        parsed.update(zip(spec.names, codes, strict=True))
    else:
        parsed = _parse_frames_with_tensorflow(serialized, spec, context_spec, max_frames)
    if with_ids:
        _merge_video_ids(parsed)
    return parsed


def _parse_frames_with_tensorflow(serialized: tf.Tensor, spec: FeatureSpec, context_spec: dict,
                                  max_frames: int) -> dict[str, tf.Tensor]:
    """parse_frame_examples with TensorFlow's ops only (what a SavedModel can hold): one
    string per frame, decoded, then gathered into the padded batch."""
    context, sequences, _ = tf.io.parse_sequence_example(
        serialized, context_features=context_spec,
        sequence_features={name: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64)
                           for name in spec.names})
    parsed = dict(context)
    row_splits = sequences[spec.names[0]].row_splits
    lengths = tf.minimum(row_splits[1:] - row_splits[:-1], max_frames)
    frames_axis = tf.reduce_max(tf.concat([lengths, [0]], 0))
    # Frame t of video v is row min(start_v + t, end_v - 1) of the batch's flat frames.
    rows = tf.minimum(row_splits[:-1, None] + tf.range(frames_axis)[None, :],
                      tf.maximum(row_splits[1:, None] - 1, 0))
    for name, size in spec.items():
        frames = sequences[name]
        codes = tf.io.decode_raw(frames.flat_values, tf.uint8)
        tf.debugging.assert_equal(
            tf.shape(codes)[-1], size,
            message=f"frame feature {name!r}: each frame must be {size} bytes")
        tf.debugging.assert_equal(
            frames.row_splits, row_splits,
            message=f"frame feature {name!r}: each video needs as many frames of it as of "
                    f"{spec.names[0]!r}")
        parsed[name] = tf.gather(tf.reshape(codes, [-1, size]), rows)
        parsed[name].set_shape([None, None, size])
    parsed[NUM_FRAMES_KEY] = tf.cast(lengths, tf.int32)
    return parsed


def parse_segment_ratings(serialized: tf.Tensor, spec: FeatureSpec,
                          max_frames: int | None = DEFAULT_MAX_FRAMES,
                          with_ids: bool = False) -> dict[str, tf.Tensor]:
    """The segment ratings (sparse) and `num_frames` (at most `max_frames`; None: every
    frame) of a batch of serialized SequenceExamples, without decoding any frame."""
    context, sequences, _ = tf.io.parse_sequence_example(
        serialized, context_features=_labels_and_ids_spec(False, with_ids, True),
        sequence_features={spec.names[0]: tf.io.RaggedFeature(tf.string)})
    parsed = dict(context)
    lengths = sequences[spec.names[0]].row_lengths()
    if max_frames is not None:
        lengths = tf.minimum(lengths, max_frames)
    parsed[NUM_FRAMES_KEY] = tf.cast(lengths, tf.int32)
    if with_ids:
        _merge_video_ids(parsed)
    return parsed


def parse_examples(serialized: tf.Tensor, spec: FeatureSpec, with_labels: bool = False,
                   max_frames: int = DEFAULT_MAX_FRAMES,
                   with_ids: bool = False, in_saved_model: bool = True
                   ) -> dict[str, tf.Tensor]:
    """Video- or frame-level parsing, as `spec` says. With `with_ids`, `video_id` holds each
    example's 2018 `id` or 2017 `video_id`; `in_saved_model` as parse_frame_examples."""
    if spec.is_frame_level:
        return parse_frame_examples(serialized, spec, with_labels, max_frames, with_ids,
                                    in_saved_model=in_saved_model)
    return parse_video_examples(serialized, spec, with_labels, with_ids)


def model_input_names(spec: FeatureSpec) -> list[str]:
    """The keys of the feature dict a model takes."""
    return [*spec.names, NUM_FRAMES_KEY] if spec.is_frame_level else list(spec.names)


def list_files(file_patterns: str | list[str]) -> list[str]:
    """Expands one or several glob patterns; raises FileNotFoundError naming the pattern."""
    patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
    files = []
    for pattern in patterns:
        matched = expand_pattern(pattern)
        if not matched:
            raise FileNotFoundError(f"data pattern matches no files: {pattern}")
        files.extend(matched)
    return files


def make_dataset(
    file_patterns: str | list[str],
    spec: FeatureSpec,
    num_classes: int,
    batch_size: int,
    shuffle: bool = False,
    num_epochs: int | None = 1,
    with_labels: bool = True,
    seed: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    segment_size: int | None = None,
) -> tf.data.Dataset:
    """Batches of `(features, multi_hot_labels)` (or just `features` when `with_labels` is False).

    `features` maps each name in `spec` to float32 [batch, size] (video level) or uint8
    codes [batch, frames ≤ max_frames, size] (frame level, with `num_frames` [batch]).
    With `segment_size`, the examples are the rated segments of segment-rated frame-level
    videos (trainer_module.segments), `batch_size` of them a batch, and the labels are
    `segment_targets`: their scores and label weights.
    """
    files = list_files(file_patterns)
    files_ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        files_ds = files_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # The file list repeats, not the interleave: restarting it each epoch cost the frame
    # reader ~15% of its rate on few, small files (bench/README.md).
    records = files_ds.repeat(num_epochs).interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression_of(files[0])),
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    if shuffle:
        records = records.shuffle(buffer_size=max(4 * batch_size, 1024), seed=seed)
    records = records.batch(batch_size)
    if segment_size:
        return _segment_batches(records, spec, num_classes, batch_size, segment_size,
                                max_frames, shuffle, seed)

    def parse(serialized):
        parsed = parse_examples(serialized, spec, with_labels, max_frames,
                                in_saved_model=False)
        features = {name: parsed[name] for name in model_input_names(spec)}
        if not with_labels:
            return features
        return features, multi_hot(parsed[LABELS_KEY], num_classes)

    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def segment_video_batches(file_patterns: str | list[str], spec: FeatureSpec, batch_size: int,
                          max_frames: int = DEFAULT_MAX_FRAMES) -> tf.data.Dataset:
    """One pass over segment-rated videos: batches of parsed videos with their ids and
    segment ratings (the input of segment evaluation)."""
    files = list_files(file_patterns)
    records = tf.data.TFRecordDataset(files, compression_type=compression_of(files[0]))
    return records.batch(batch_size).map(
        lambda serialized: parse_frame_examples(serialized, spec, max_frames=max_frames,
                                                with_ids=True, with_segments=True,
                                                in_saved_model=False),
        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def segment_targets(labels: tf.Tensor, label_weights: tf.Tensor) -> tf.Tensor:
    """What segment training fits: the rated scores and their weights stacked
    [segments, 2, classes], so that the loss sees which classes were rated
    (losses.MaskedLoss)."""
    return tf.stack([labels, label_weights], axis=1)


def _segment_batches(video_batches: tf.data.Dataset, spec: FeatureSpec, num_classes: int,
                     batch_size: int, segment_size: int, max_frames: int, shuffle: bool,
                     seed: int | None) -> tf.data.Dataset:
    """Batches of `batch_size` rated segments from batches of serialized videos."""
    def to_segments(serialized):
        parsed = parse_frame_examples(serialized, spec, max_frames=max_frames,
                                      with_segments=True, in_saved_model=False)
        features, labels, weights = rated_segments(parsed, spec, num_classes, segment_size)
        return features, {LABELS_KEY: labels, LABEL_WEIGHTS_KEY: weights}

    segments = video_batches.map(to_segments, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    if shuffle:
        segments = segments.shuffle(buffer_size=max(4 * batch_size, 1024), seed=seed)

    def stack(features, targets):
        return features, segment_targets(targets[LABELS_KEY], targets[LABEL_WEIGHTS_KEY])

    return (segments.batch(batch_size).map(stack, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
