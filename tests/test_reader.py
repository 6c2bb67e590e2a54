"""The batched video-level reader and the feature contract."""

import numpy as np
import pytest

from tests.helpers import random_rows, write_video_examples
from trainer_module.features import FeatureSpec, FeatureSpecError, multi_hot
from trainer_module.reader import make_dataset

SPEC = FeatureSpec.from_flags("mean_rgb,mean_audio", "1024,128")


@pytest.mark.parametrize("compression,suffix", [("", ".tfrecord"), ("GZIP", ".gz")])
def test_reader_yields_dense_features_and_multi_hot_labels(tmp_path, compression, suffix):
    rows = random_rows(5, num_classes=10)
    rows[0]["labels"] = [2, 7, 7]  # duplicates collapse to one hot entry
    write_video_examples(str(tmp_path / f"shard{suffix}"), rows, compression)

    features, labels = next(iter(make_dataset(
        str(tmp_path / f"*{suffix}"), SPEC, num_classes=10, batch_size=8)))

    assert features["mean_rgb"].shape == (5, 1024)
    np.testing.assert_allclose(features["mean_audio"][3], rows[3]["mean_audio"])
    expected = np.zeros((5, 10), np.float32)
    for i, row in enumerate(rows):
        expected[i, row["labels"]] = 1
    np.testing.assert_array_equal(labels, expected)


def test_reader_without_labels_reads_unlabelled_test_shards(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "labels"} for row in random_rows(3)]
    write_video_examples(str(tmp_path / "test.tfrecord"), rows)
    features = next(iter(make_dataset(str(tmp_path / "*.tfrecord"), SPEC, 3862, 4,
                                            with_labels=False)))
    assert set(features) == {"mean_rgb", "mean_audio"}


def test_reader_names_a_pattern_that_matches_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="matches no files: .*nothing-here"):
        make_dataset(str(tmp_path / "nothing-here*"), SPEC, 3862, 4)


def test_multi_hot_from_sparse_ids():
    import tensorflow as tf

    sparse = tf.sparse.from_dense(tf.constant([[1, 3], [0, 0]], tf.int64))
    np.testing.assert_array_equal(multi_hot(sparse, 4), [[0, 1, 0, 1], [0, 0, 0, 0]])


@pytest.mark.parametrize("names,sizes,message", [
    ("mean_rgb,mean_audio", "1024", "has 2 entries .* has 1"),
    ("mean_rgb,mean_colour", "1024,128", "unknown feature name 'mean_colour'"),
    ("mean_rgb", "abc", "comma-separated integers"),
    ("mean_rgb,audio", "1024,128", "mixes video-level and frame-level"),
])
def test_feature_spec_rejects_bad_flags(names, sizes, message):
    with pytest.raises(FeatureSpecError, match=message):
        FeatureSpec.from_flags(names, sizes)
