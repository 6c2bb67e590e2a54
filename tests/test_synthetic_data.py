"""The synthetic generator: deterministic, both formats, and a signal a model can learn."""

import numpy as np
import pytest
import tensorflow as tf

from data_tools.make_synthetic_data import (
    class_frequencies,
    class_prototypes,
    main,
    serialized_example,
    synthetic_videos,
)
from trainer_module.features import FeatureSpec
from trainer_module.layers import DequantizedFrames
from trainer_module.reader import make_dataset

VIDEO = FeatureSpec.from_flags("mean_rgb,mean_audio", "1024,128")
FRAME = FeatureSpec.from_flags("rgb,audio", "1024,128")


def generate(root, *flags):
    assert main(["--output_dir", str(root), "--train_shards", "2", "--validate_shards", "1",
                 "--videos_per_shard", "30", "--num_classes", "50", *flags]) == 0


def test_video_level_data_is_seeded_and_carries_the_planted_signal(tmp_path):
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    for split in ("train/train0000", "train/train0001", "validate/validate0000"):
        assert (tmp_path / "a" / f"{split}.tfrecord").read_bytes() == (
            tmp_path / "b" / f"{split}.tfrecord").read_bytes()
    features, labels = next(iter(make_dataset(str(tmp_path / "a" / "train" / "*.tfrecord"),
                                              VIDEO, 50, batch_size=60)))
    assert labels.shape == (60, 50)
    # The class whose prototype is most similar to a video's features is one of its labels.
    values = np.concatenate([features["mean_rgb"], features["mean_audio"]], axis=1)
    best = (values @ class_prototypes(0, 50).T).argmax(axis=1)
    assert labels.numpy()[np.arange(60), best].mean() > 0.8
    assert not (tmp_path / "a" / "train" / "train0000.tfrecord.partial").exists()


def test_frame_level_data_has_frames_around_the_video_features(tmp_path):
    generate(tmp_path / "v")
    generate(tmp_path / "f", "--frame_features", "--min_frames", "5", "--max_frames", "9")
    frames, frame_labels = next(iter(make_dataset(str(tmp_path / "f" / "validate" / "*"),
                                                  FRAME, 50, batch_size=30)))
    videos, video_labels = next(iter(make_dataset(str(tmp_path / "v" / "validate" / "*"),
                                                  VIDEO, 50, batch_size=30)))
    assert ((frames["num_frames"] >= 5) & (frames["num_frames"] <= 9)).numpy().all()
    np.testing.assert_array_equal(frame_labels, video_labels)
    audio = DequantizedFrames()(frames["audio"], frames["num_frames"])
    mean_audio = tf.reduce_sum(audio, 1) / tf.cast(frames["num_frames"], tf.float32)[:, None]
    np.testing.assert_allclose(mean_audio, videos["mean_audio"], atol=0.02)


def test_bad_sizes_are_one_line(capsys, tmp_path):
    assert main(["--output_dir", str(tmp_path), "--videos_per_shard", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --videos_per_shard must be positive, got 0"


def test_validate_shards_may_hold_a_different_number_of_videos(tmp_path):
    generate(tmp_path, "--validate_videos_per_shard", "7")
    count = lambda pattern: sum(1 for _ in tf.data.TFRecordDataset(  # noqa: E731
        tf.io.gfile.glob(str(tmp_path / pattern))))
    assert (count("train/*"), count("validate/*")) == (60, 7)


def test_the_hand_serialized_example_is_the_protobuf_example():
    """serialized_example writes protobuf's wire format by hand: protobuf parses it back to
    the message built field by field, labels (multi-byte varints too) and floats exact."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=1152).astype(np.float32)
    labels = np.array([0, 5, 127, 128, 3861])
    parsed = tf.train.Example.FromString(serialized_example("vid-1", labels, values))
    expected = tf.train.Example()
    feature = expected.features.feature
    feature["id"].bytes_list.value.append(b"vid-1")
    feature["labels"].int64_list.value.extend(labels.tolist())
    feature["mean_rgb"].float_list.value.extend(values[:1024].tolist())
    feature["mean_audio"].float_list.value.extend(values[1024:].tolist())
    assert parsed == expected


def test_labels_are_distinct_and_follow_the_class_frequencies():
    frequencies = class_frequencies(50)
    labels, values = synthetic_videos(np.random.default_rng(0), class_prototypes(0, 50),
                                      frequencies, 20_000)
    assert values.shape == (20_000, 1152) and values.dtype == np.float32
    assert all(1 <= len(ids) <= 5 and len(set(ids)) == len(ids) for ids in labels)
    assert np.mean([len(ids) for ids in labels]) == pytest.approx(3.0, abs=0.05)
    # Single-label videos draw their label by the frequencies alone.
    single = np.concatenate([ids for ids in labels if len(ids) == 1])
    observed = np.bincount(single, minlength=50) / len(single)
    assert np.abs(observed - frequencies).max() < 0.01
