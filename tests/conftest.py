"""Shared fixtures: small real YouTube-8M shards from the bundled sample, and tiny fakes."""

from __future__ import annotations

import os
import shutil

import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(PROJECT_ROOT, "data", "sample", "video")


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> str:
    """Two real train shards and one real validate shard from the bundled sample."""
    root = tmp_path_factory.mktemp("yt8m_tiny")
    for split, names in (("train", ["validate0000.tfrecord", "validate0001.tfrecord"]),
                         ("validate", ["validate0048.tfrecord"])):
        os.makedirs(root / split)
        for name in names:
            shutil.copy(os.path.join(SAMPLE, split, name), root / split / name)
    return str(root)


@pytest.fixture(scope="session")
def serving_base(tiny_data_root, tmp_path_factory) -> str:
    """TF Serving's layout, `<base>/1/`, holding a LogisticModel trained briefly on real data."""
    from trainer_module.reader import list_files
    from trainer_module.train import train_and_export
    from trainer_module.training_config import TrainingConfig

    base = tmp_path_factory.mktemp("serving_model")
    train_and_export(TrainingConfig(batch_size=64),
                     list_files(os.path.join(tiny_data_root, "train", "*.tfrecord")),
                     list_files(os.path.join(tiny_data_root, "validate", "*.tfrecord")),
                     train_steps=20, export_dir=str(base / "1"), log_dir=str(base / "logs"))
    return str(base)
