"""The one batched reader of YouTube-8M TFRecords, used by the Trainer, the CLIs and benchmarks.

Records are batched *before* parsing so that `tf.io.parse_example` decodes a whole batch in
one op; per-record parsing is several times slower on these 4.6 KB examples.
"""

from __future__ import annotations

import tensorflow as tf

from trainer_module.features import LABELS_KEY, FeatureSpec, multi_hot


def video_parse_spec(spec: FeatureSpec, with_labels: bool) -> dict:
    """The `parse_example` spec for video-level features (and optionally the labels)."""
    parse_spec = {
        name: tf.io.FixedLenFeature([size], tf.float32)
        for name, size in spec.items()
    }
    if with_labels:
        parse_spec[LABELS_KEY] = tf.io.VarLenFeature(tf.int64)
    return parse_spec


def parse_video_examples(serialized: tf.Tensor, spec: FeatureSpec,
                         with_labels: bool = False) -> dict[str, tf.Tensor]:
    """Parses a batch of serialized tf.Examples into dense features (and sparse labels)."""
    return tf.io.parse_example(serialized, video_parse_spec(spec, with_labels))


def compression_of(file_pattern: str) -> str:
    """TFX ExampleGen writes gzipped shards (`*.gz`); the public dataset is uncompressed."""
    return "GZIP" if file_pattern.endswith(".gz") else ""


def list_files(file_patterns: str | list[str]) -> list[str]:
    """Expands one or several glob patterns; raises FileNotFoundError naming the pattern."""
    patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
    files = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise FileNotFoundError(f"data pattern matches no files: {pattern}")
        files.extend(matched)
    return files


def make_video_dataset(
    file_patterns: str | list[str],
    spec: FeatureSpec,
    num_classes: int,
    batch_size: int,
    shuffle: bool = False,
    num_epochs: int | None = 1,
    with_labels: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of `(features, multi_hot_labels)` (or just `features` when `with_labels` is False).

    `features` maps each name in `spec` to a dense [batch, size] float32 tensor.
    """
    files = list_files(file_patterns)
    files_ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        files_ds = files_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    records = files_ds.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression_of(files[0])),
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    if shuffle:
        records = records.shuffle(buffer_size=max(4 * batch_size, 1024), seed=seed)
    records = records.repeat(num_epochs).batch(batch_size)

    def parse(serialized):
        parsed = parse_video_examples(serialized, spec, with_labels)
        features = {name: parsed[name] for name in spec.names}
        if not with_labels:
            return features
        return features, multi_hot(parsed[LABELS_KEY], num_classes)

    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
