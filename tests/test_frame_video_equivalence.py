"""The starter code's stated equivalence: FrameLevelLogisticModel on frames whose mean is the
video's features learns what LogisticModel learns on those video-level features.

It holds for the pooling, so the input normalisation is off here: normalised, each frame is
scaled to unit norm before the mean, and the video-level mean after it, so the two models see
different inputs (as in the starter code)."""

import glob
import os

from data_tools.make_frame_data import main as make_frame_data
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig


def test_frame_level_logistic_matches_video_level_logistic(tmp_path, tiny_data_root):
    for split in ("train", "validate"):
        assert make_frame_data([f"--input_pattern={tiny_data_root}/{split}/*.tfrecord",
                                f"--output_dir={tmp_path / split}", "--min_frames=10",
                                "--max_frames=40"]) == 0

    def gap(config: TrainingConfig, root: str) -> float:
        metrics = train_and_export(
            config, sorted(glob.glob(os.path.join(root, "train", "*.tfrecord"))),
            sorted(glob.glob(os.path.join(root, "validate", "*.tfrecord"))), train_steps=60,
            export_dir=str(tmp_path / config.model), log_dir=str(tmp_path / "logs"))
        return metrics["gap"]

    raw = {"l2_normalize_input": False}
    video_gap = gap(TrainingConfig(model="LogisticModel", batch_size=128, model_hparams=raw),
                    tiny_data_root)
    frame_gap = gap(TrainingConfig(model="FrameLevelLogisticModel", batch_size=128,
                                   feature_names="rgb,audio", max_frames=40,
                                   model_hparams=raw), str(tmp_path))
    assert video_gap > 0.1
    print(f"GAP video-level {video_gap:.4f}, frame-level {frame_gap:.4f}")
    assert abs(frame_gap - video_gap) < 0.02, (frame_gap, video_gap)
