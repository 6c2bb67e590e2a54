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
