"""Frame-level data: quantization, synthesized frames, and the frame reader."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_rows, write_frame_examples
from trainer_module.features import FeatureSpec
from trainer_module.frames import (
    DEQUANTIZED_MAX,
    DEQUANTIZED_MIN,
    dequantize,
    quantize,
    sequence_example_from_video,
    synthesize_frames,
)
from trainer_module.reader import make_dataset

FRAME_SPEC = FeatureSpec.from_flags("rgb,audio", "1024,128")


def test_dequantize_is_the_datasets_formula_and_quantize_inverts_it():
    codes = np.arange(256, dtype=np.uint8)
    expected = codes.astype(np.float64) * 4 / 255 + 4 / 512 - 2
    np.testing.assert_allclose(dequantize(codes), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(quantize(dequantize(codes).numpy()), codes)


@pytest.mark.parametrize("num_frames", [3, 60, 300])
def test_synthesized_frames_reproduce_the_video_mean_with_temporal_variation(num_frames):
    rng = np.random.default_rng(num_frames)
    mean = rng.uniform(DEQUANTIZED_MIN, DEQUANTIZED_MAX, 1024)
    mean[:2] = DEQUANTIZED_MIN, DEQUANTIZED_MAX  # edges of the range, where clipping bites
    frames = dequantize(synthesize_frames(mean, num_frames, rng)).numpy()
    assert frames.shape == (num_frames, 1024)
    step = 4 / 255
    assert np.abs(frames.mean(axis=0) - mean).max() <= step / 2
    assert frames.std(axis=0).mean() > (0.1 if num_frames >= 60 else 0.03), "frames vary"


def test_sequence_example_keeps_id_and_labels():
    video = tf.train.Example()
    row = random_rows(1)[0]
    video.features.feature["id"].bytes_list.value.append(b"ab12")
    video.features.feature["labels"].int64_list.value.extend(row["labels"])
    video.features.feature["mean_rgb"].float_list.value.extend(row["mean_rgb"])
    video.features.feature["mean_audio"].float_list.value.extend(row["mean_audio"])
    sequence = sequence_example_from_video(video, np.random.default_rng(0), 10, 10)
    assert sequence.context.feature["id"].bytes_list.value == [b"ab12"]
    assert list(sequence.context.feature["labels"].int64_list.value) == row["labels"]
    rgb = sequence.feature_lists.feature_list["rgb"].feature
    assert len(rgb) == 10 and len(rgb[0].bytes_list.value[0]) == 1024


def test_frame_reader_pads_truncates_and_counts_frames(tmp_path):
    rows = random_rows(6, seed=2)
    write_frame_examples(str(tmp_path / "f.tfrecord"), rows, min_frames=2, max_frames=9)
    records = [tf.train.SequenceExample.FromString(r.numpy())
               for r in tf.data.TFRecordDataset(str(tmp_path / "f.tfrecord"))]
    lengths = [len(r.feature_lists.feature_list["rgb"].feature) for r in records]

    features, labels = next(iter(make_dataset(str(tmp_path / "f.tfrecord"), FRAME_SPEC,
                                              num_classes=3862, batch_size=6, max_frames=5)))
    assert features["rgb"].shape == (6, 5, 1024) and features["audio"].shape == (6, 5, 128)
    np.testing.assert_array_equal(features["num_frames"], np.minimum(lengths, 5))
    first = records[0].feature_lists.feature_list["audio"].feature
    np.testing.assert_array_equal(features["audio"][0, 0],
                                  np.frombuffer(first[0].bytes_list.value[0], np.uint8))
    short = int(np.argmin(lengths))
    assert lengths[short] < 5, "the seed gives a video shorter than max_frames"
    padding = features["rgb"][short, lengths[short]:].numpy()
    assert (padding == features["rgb"][short, lengths[short] - 1].numpy()).all(), (
        "padding repeats the last frame")
    assert labels.shape == (6, 3862) and labels.numpy()[0, rows[0]["labels"]].all()

    # Below max_frames, a batch is padded only to its longest video.
    features, _ = next(iter(make_dataset(str(tmp_path / "f.tfrecord"), FRAME_SPEC,
                                         num_classes=3862, batch_size=6, max_frames=50)))
    assert features["rgb"].shape == (6, max(lengths), 1024)
