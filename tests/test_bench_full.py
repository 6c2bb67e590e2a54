"""make bench-full's data: the official layout at any fraction, and a generation that
resumes where it stopped with the same bytes."""

import os

import pytest

from bench.full import OFFICIAL_SHARDS, generate, shard_plan
from bench.scale import FULL_2018


def test_the_full_plan_is_the_official_layout():
    plan = shard_plan(1.0)
    for split in ("train", "validate"):
        videos = [count for name, _, count in plan if name == split]
        assert len(videos) == OFFICIAL_SHARDS[split] == 3844
        assert sum(videos) == FULL_2018[split]
        assert max(videos) - min(videos) <= 1
    assert [(s, n) for s, n, _ in shard_plan(1e-6)] == [("train", 0), ("validate", 0)]


def test_generation_resumes_with_the_same_shards(tmp_path):
    plan = [("train", 0, 40), ("train", 1, 39), ("validate", 0, 12)]
    first = generate(str(tmp_path), plan)
    assert first["videos_written"] == 91 and first["videos"] == {"train": 79, "validate": 12}
    shard = tmp_path / "train" / "train0001.tfrecord"
    written = shard.read_bytes()
    os.remove(shard)
    again = generate(str(tmp_path), plan)
    assert again["videos_written"] == 39
    assert shard.read_bytes() == written
    assert not list(tmp_path.glob("*/*.partial"))
    with pytest.raises(ValueError, match=f"{tmp_path} holds shards of another plan"):
        generate(str(tmp_path), plan[:2])


def test_the_peak_rss_counts_beams_worker_processes():
    """The pipeline's RSS includes the processes it starts (Beam's DirectRunner workers)."""
    import subprocess
    import sys
    import time

    from bench.pipeline_child import rss_mb

    alone = rss_mb()
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; b = bytearray(300 << 20); print(1, flush=True);"
                              " time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # the 300 MB are allocated and touched
        time.sleep(0.2)
        assert rss_mb() - alone > 250
    finally:
        child.kill()
        child.wait()
