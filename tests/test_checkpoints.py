"""Checkpoints: resume from train_dir, --start_new_model, architecture checks, warm start."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_rows, write_video_examples
from trainer_module.checkpoints import CheckpointMismatchError, restore_or_start, warm_start
from trainer_module.train import compile_model, train_and_export
from trainer_module.training_config import TrainingConfig

FEATURES = {"mean_rgb": np.random.default_rng(0).normal(size=(4, 1024)).astype("float32"),
            "mean_audio": np.random.default_rng(1).normal(size=(4, 128)).astype("float32")}


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data") / "train.tfrecord")
    write_video_examples(path, random_rows(40, seed=3))
    return path


def train(config, shard, steps, out, **kwargs):
    train_and_export(config, [shard], [shard], train_steps=steps,
                     export_dir=str(out / "model"), log_dir=str(out / "logs"), **kwargs)
    with open(out / "model" / "assets.extra" / "training_history.json") as f:
        return json.load(f)


def exported_scores(export_dir):
    loaded = tf.saved_model.load(str(export_dir))
    return loaded.signatures["predict_features"](**FEATURES)["scores"].numpy()


def test_rerun_resumes_from_the_latest_checkpoint(tmp_path, shard):
    config = TrainingConfig(batch_size=8, train_dir=str(tmp_path / "train"), checkpoint_steps=2)
    assert train(config, shard, 3, tmp_path / "first") == {
        "resumed_from_step": 0, "final_step": 3, "warm_started_from": None, "replicas": 1}
    assert tf.train.latest_checkpoint(config.train_dir).endswith("ckpt-3")

    # A fresh model restored from train_dir predicts exactly as the exported one.
    model = compile_model(config)
    _, step = restore_or_start(model, config)
    assert step == 3 and int(model.optimizer.iterations.numpy()) == 3
    np.testing.assert_allclose(model(FEATURES).numpy(),
                               exported_scores(tmp_path / "first" / "model"), rtol=1e-6)

    history = train(config, shard, 5, tmp_path / "second")
    assert history["resumed_from_step"] == 3 and history["final_step"] == 5
    assert tf.train.latest_checkpoint(config.train_dir).endswith("ckpt-5")


def test_start_new_model_discards_checkpoints_but_nothing_else(tmp_path, shard):
    config = TrainingConfig(batch_size=8, train_dir=str(tmp_path / "train"))
    train(config, shard, 2, tmp_path / "first")
    (tmp_path / "train" / "notes.txt").write_text("mine")

    fresh = TrainingConfig(batch_size=8, train_dir=config.train_dir, start_new_model=True)
    _, step = restore_or_start(compile_model(fresh), fresh)
    assert step == 0 and tf.train.latest_checkpoint(config.train_dir) is None
    assert (tmp_path / "train" / "notes.txt").read_text() == "mine"


def test_resuming_another_architecture_names_what_changed(tmp_path, shard):
    config = TrainingConfig(batch_size=8, train_dir=str(tmp_path / "train"))
    train(config, shard, 1, tmp_path / "first")
    other = TrainingConfig(model="MoeModel", batch_size=8, train_dir=config.train_dir,
                           model_hparams={"moe_num_mixtures": 3})
    with pytest.raises(CheckpointMismatchError,
                       match=r"model 'LogisticModel' → 'MoeModel'.*--start_new_model"):
        restore_or_start(compile_model(other), other)


def test_warm_start_loads_an_exported_models_weights(tmp_path, shard):
    config = TrainingConfig(batch_size=8)
    train(config, shard, 3, tmp_path / "base")
    base = str(tmp_path / "base" / "model")

    model = compile_model(config)
    warm_start(model, base)
    np.testing.assert_allclose(model(FEATURES).numpy(), exported_scores(base), rtol=1e-6)
    assert train(config, shard, 1, tmp_path / "warm",
                 warm_start_from=base)["warm_started_from"] == base

    moe = TrainingConfig(model="MoeModel", batch_size=8)
    with pytest.raises(CheckpointMismatchError, match="cannot warm-start from .*architecture"):
        warm_start(compile_model(moe), base)


def test_mirrored_strategy_trains_resumes_and_exports(tmp_path, shard):
    config = TrainingConfig(batch_size=8, distribution="mirrored",
                            train_dir=str(tmp_path / "train"))
    assert train(config, shard, 2, tmp_path / "first")["final_step"] == 2
    assert train(config, shard, 3, tmp_path / "second")["resumed_from_step"] == 2
    assert exported_scores(tmp_path / "second" / "model").shape == (4, 3862)
