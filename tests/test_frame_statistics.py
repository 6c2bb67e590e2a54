"""Generated frames against real ones: `make_frame_data`'s generator, fed the means of the
bundled real videos, gives frames with the statistics of the 143 real 2018 videos
(data/sample/frame/real_subset_statistics.json, measured by `data_tools.frame_stats`)."""

import glob
import json
import os

import numpy as np
import tensorflow as tf

from data_tools.frame_stats import frame_statistics, main, video_codes
from trainer_module.frames import dequantize_numpy, sequence_example_from_video

FRAME_SAMPLE = os.path.join(os.path.dirname(__file__), "..", "data", "sample", "frame")
QUANTIZATION_STEP = 4 / 255
GENERATED_PER_REAL_VIDEO = 4


def _reference() -> dict:
    with open(os.path.join(FRAME_SAMPLE, "real_subset_statistics.json")) as f:
        return next(iter(json.load(f).values()))


def _video_level_example(mean: np.ndarray) -> tf.train.Example:
    video = tf.train.Example()
    rgb, audio = np.split(mean, [1024])
    video.features.feature["mean_rgb"].float_list.value.extend(rgb)
    video.features.feature["mean_audio"].float_list.value.extend(audio)
    video.features.feature["labels"].int64_list.value.append(1)
    return video


def test_generated_frames_have_the_statistics_of_real_ones_and_keep_each_mean(tmp_path):
    real = list(video_codes(sorted(glob.glob(f"{FRAME_SAMPLE}/*/*.tfrecord"))))
    means = [dequantize_numpy(codes).mean(axis=0).astype(np.float64) for codes in real]
    rng = np.random.default_rng(0)
    path = str(tmp_path / "generated.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:  # the generator's own frame-count draw
        for mean in means:
            for _ in range(GENERATED_PER_REAL_VIDEO):
                writer.write(sequence_example_from_video(
                    _video_level_example(mean), rng).SerializeToString())
    generated = list(video_codes([path]))

    for index, codes in enumerate(generated):
        source = means[index // GENERATED_PER_REAL_VIDEO]
        error = np.abs(dequantize_numpy(codes).mean(axis=0) - source).max()
        assert error <= QUANTIZATION_STEP / 2, f"video {index}: mean off by {error:.4f}"
    stats, reference = frame_statistics(generated), _reference()
    assert abs(stats["frames"][1] / reference["frames"][1] - 1) <= 0.2, stats["frames"]
    assert reference["frames"][0] <= stats["frames"][0] <= stats["frames"][2] <= 300
    assert abs(stats["lag1_correlation"] - reference["lag1_correlation"]) <= 0.1
    assert abs(stats["within_video_std"] / reference["within_video_std"] - 1) <= 0.2
    assert 0.5 <= stats["saturation"] / reference["saturation"] <= 2


def test_the_bundled_real_videos_agree_with_the_reference_they_come_from():
    stats = frame_statistics(video_codes(sorted(glob.glob(f"{FRAME_SAMPLE}/*/*.tfrecord"))))
    reference = _reference()
    assert stats["videos"] == 12
    assert abs(stats["lag1_correlation"] - reference["lag1_correlation"]) <= 0.05
    assert abs(stats["within_video_std"] / reference["within_video_std"] - 1) <= 0.05
    assert abs(stats["saturation"] / reference["saturation"] - 1) <= 0.1


def test_command_prints_a_column_per_set_and_refuses_video_level_shards(capsys, tmp_path):
    pattern = f"{FRAME_SAMPLE}/validate/*.tfrecord"
    assert main([pattern, f"{FRAME_SAMPLE}/train/*.tfrecord",
                 "--json", str(tmp_path / "s.json")]) == 0
    printed = capsys.readouterr().out
    assert f"| statistic | {pattern} |" in printed and "| videos | 4 | 8 |" in printed
    with open(tmp_path / "s.json") as f:
        assert json.load(f)[pattern]["videos"] == 4

    video_level = sorted(glob.glob(os.path.join(FRAME_SAMPLE, "..", "video", "validate",
                                                "*.tfrecord")))[0]
    assert main([video_level]) == 2
    assert f"{video_level}: not frame-level data (no 'rgb' frames)" in capsys.readouterr().err
