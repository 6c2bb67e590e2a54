"""Data validation: every record is read before a run; each bad input is one line naming the
file, and nothing is written."""

import os
import shutil

import pytest

from data_tools.validate_data import main as validate_data
from pipeline.run_local import build_parser, check_data, config_from_args
from pipeline.run_local import main as run_local
from tests.helpers import random_rows, write_video_examples


def data_root(tmp_path, tiny_data_root):
    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root)
    return root


def run_expecting_error(capsys, tmp_path, root) -> str:
    code = run_local(["--data_root", str(root), "--pipeline_root", str(tmp_path / "out"),
                      "--serving_model_dir", str(tmp_path / "serving")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "serving").exists()
    return err


def test_truncated_shard(capsys, tmp_path, tiny_data_root):
    root = data_root(tmp_path, tiny_data_root)
    shard = root / "train" / "validate0001.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-1000])
    err = run_expecting_error(capsys, tmp_path, root)
    assert err.startswith(f"error: {shard}: corrupt or truncated TFRecord file")


def test_empty_shard(capsys, tmp_path, tiny_data_root):
    root = data_root(tmp_path, tiny_data_root)
    (root / "validate" / "zz-empty.tfrecord").write_bytes(b"")
    assert run_expecting_error(capsys, tmp_path, root) == (
        f"error: {root / 'validate' / 'zz-empty.tfrecord'} is empty (0 bytes)")


def test_label_outside_the_classes(capsys, tmp_path, tiny_data_root):
    root = data_root(tmp_path, tiny_data_root)
    rows = random_rows(3)
    rows[2]["labels"] = [5000]
    write_video_examples(str(root / "train" / "zz-bad.tfrecord"), rows)
    err = run_expecting_error(capsys, tmp_path, root)
    assert "zz-bad.tfrecord: label 5000 is outside the 3862 classes of --num_classes" in err


def twenty_seventeen(root):
    for split in ("train", "validate"):
        os.makedirs(root / split)
        rows = [{k: v for k, v in r.items() if k != "id"} | {"video_id": f"v{i}"}
                for i, r in enumerate(random_rows(4, seed=7, num_classes=4716))]
        rows[0]["labels"] = [4700]
        write_video_examples(str(root / split / "a.tfrecord"), rows)


def test_2017_data_is_detected_and_adapted_to(capsys, tmp_path):
    twenty_seventeen(tmp_path / "data")
    assert validate_data(["--data_root", str(tmp_path / "data")]) == 0
    assert "2017 generation, labels within 4716 classes" in capsys.readouterr().out

    args = build_parser().parse_args(["--data_root", str(tmp_path / "data"),
                                      "--pipeline_root", str(tmp_path / "out")])
    config, files = config_from_args(args)
    config, notes = check_data(config, files, num_classes_given=False)
    assert config.training.num_classes == 4716
    assert "is 2017 YouTube-8M data (video_id, 4716 classes)" in notes[0]


def test_2017_data_with_2018_classes_named(capsys, tmp_path):
    twenty_seventeen(tmp_path / "data")
    assert validate_data(["--data_root", str(tmp_path / "data"), "--num_classes", "3862"]) == 2
    assert "label 4700 is outside the 3862 classes" in capsys.readouterr().err


def test_mixed_generations(capsys, tmp_path, tiny_data_root):
    root = data_root(tmp_path, tiny_data_root)
    rows = [{k: v for k, v in r.items() if k != "id"} | {"video_id": "x"}
            for r in random_rows(2)]
    write_video_examples(str(root / "validate" / "zz-2017.tfrecord"), rows)
    assert validate_data(["--data_root", str(root)]) == 2
    assert "shards of both dataset generations are mixed" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [[], ["--num_classes", "3862"]])
def test_bundled_sample_is_valid(capsys, flags):
    from tests.conftest import SAMPLE

    assert validate_data(["--data_root", SAMPLE, *flags]) == 0
    assert "16 shards, 4682 videos, 2018 generation" in capsys.readouterr().out
