"""Every registered model builds, trains a few steps and exports a servable SavedModel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (
    assert_runs_in_tf_servings_loader,
    assert_variables_are_what_the_signatures_read,
    random_rows,
    write_frame_examples,
    write_video_examples,
)
from trainer_module.frame_level_models import FRAME_LEVEL_MODELS
from trainer_module.frames import dequantize_numpy
from trainer_module.layers import (
    BagOfFrames,
    ContextGating,
    NetFV,
    NetVLAD,
    NeXtVLAD,
    SoftBagOfFrames,
)
from trainer_module.losses import LOSSES, get_loss
from trainer_module.metrics import EvaluationMetrics
from trainer_module.models import MODELS, build_model, model_hyperparameters
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig
from trainer_module.vocabulary import label_names

NUM_CLASSES = 3862


# Small sizes keep every model's test to seconds; defaults are the starter code's.
SMALL_HPARAMS = {
    "DbofModel": {"dbof_cluster_size": 64, "dbof_hidden_size": 32, "iterations": 8},
    "GatedDbofModel": {"dbof_cluster_size": 64, "dbof_hidden_size": 32, "iterations": 8},
    "SoftDbofModel": {"dbof_cluster_size": 32, "dbof_hidden_size": 32,
                      "softdbof_maxpool": True, "iterations": 8},
    "NetVLADModel": {"netvlad_cluster_size": 4, "netvlad_hidden_size": 32, "iterations": 8,
                     "moe_prob_gating": True},
    "NetRVLADModel": {"netvlad_cluster_size": 4, "netvlad_hidden_size": 32, "iterations": 8},
    "NetFVModel": {"fv_cluster_size": 4, "fv_hidden_size": 32, "iterations": 8},
    "NeXtVLADModel": {"nextvlad_cluster_size": 4, "nextvlad_hidden_size": 32, "groups": 4},
    "LstmModel": {"lstm_cells": 16, "lstm_layers": 2},
    "GruModel": {"lstm_cells": 16, "lstm_layers": 2},
}
MAX_FRAMES = 12


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    rows = random_rows(48, seed=1)
    write_video_examples(str(root / "train.tfrecord"), rows[:32])
    write_video_examples(str(root / "eval.tfrecord"), rows[32:])
    write_frame_examples(str(root / "train_frames.tfrecord"), rows[:32])
    write_frame_examples(str(root / "eval_frames.tfrecord"), rows[32:])
    return root, rows[32:]


def config_for(model_name: str) -> TrainingConfig:
    if model_name in FRAME_LEVEL_MODELS:
        return TrainingConfig(model=model_name, batch_size=16, feature_names="rgb,audio",
                              max_frames=MAX_FRAMES,
                              model_hparams=SMALL_HPARAMS.get(model_name, {}))
    return TrainingConfig(model=model_name, batch_size=16)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_model_trains_and_exports_serving_signatures(tmp_path, shards, model_name):
    root, eval_rows = shards
    config = config_for(model_name)
    suffix = "_frames" if model_name in FRAME_LEVEL_MODELS else ""
    train, evaluation = str(root / f"train{suffix}.tfrecord"), str(root / f"eval{suffix}.tfrecord")
    metrics = train_and_export(config, [train], [evaluation], train_steps=3,
                               export_dir=str(tmp_path / "model"), log_dir=str(tmp_path / "logs"))
    assert metrics["num_examples"] == len(eval_rows)

    loaded = tf.saved_model.load(str(tmp_path / "model"))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(evaluation).take(3)]
    by_examples = loaded.signatures["serving_default"](examples=tf.constant(serialized))
    assert by_examples["scores"].shape == (3, NUM_CLASSES)
    assert by_examples["top_k_class_ids"].shape == (3, 20)
    scores = by_examples["scores"].numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(
        by_examples["top_k_scores"], -np.sort(-scores, axis=1)[:, :20], rtol=1e-6)
    assert [v.decode() for v in by_examples["video_id"].numpy()] == [
        r["id"] for r in eval_rows[:3]]
    names = label_names(NUM_CLASSES)
    assert [v.decode() for v in by_examples["top_k_labels"].numpy()[0]] == [
        names[i] for i in by_examples["top_k_class_ids"].numpy()[0]]

    assert_runs_in_tf_servings_loader(str(tmp_path / "model"), loaded, serialized)
    assert_variables_are_what_the_signatures_read(str(tmp_path / "model"), loaded)
    if model_name in FRAME_LEVEL_MODELS:
        assert "predict_features" not in loaded.signatures
        return
    by_features = loaded.signatures["predict_features"](
        mean_rgb=tf.constant([r["mean_rgb"] for r in eval_rows[:3]]),
        mean_audio=tf.constant([r["mean_audio"] for r in eval_rows[:3]]))
    np.testing.assert_allclose(by_features["scores"], scores, rtol=1e-5, atol=1e-6)
    # The exported model L2-normalises its input as the starter code does: scale-free.
    by_scaled = loaded.signatures["predict_features"](
        mean_rgb=tf.constant([r["mean_rgb"] for r in eval_rows[:3]]) * 7.0,
        mean_audio=tf.constant([r["mean_audio"] for r in eval_rows[:3]]) * 7.0)
    np.testing.assert_allclose(by_scaled["scores"], scores, rtol=1e-5, atol=1e-6)
    assert tf.io.gfile.exists(str(tmp_path / "model" / "assets.extra" / "training_config.json"))


def _normalised_input(model: keras.Model) -> keras.Model:
    return keras.Model(model.inputs, model.get_layer("input_l2_normalize").output)


def test_video_input_is_l2_normalised_per_video_as_the_starter_does():
    """tf.nn.l2_normalize(model_input_raw, feature_dim): the concatenated features of each
    video scaled to unit norm, so a video's scores do not change with its scale."""
    spec = TrainingConfig().feature_spec()
    rng = np.random.default_rng(0)
    features = {"mean_rgb": rng.normal(size=(4, 1024)).astype(np.float32),
                "mean_audio": rng.normal(size=(4, 128)).astype(np.float32)}
    model = build_model("MoeModel", spec, 7)
    joined = np.concatenate([features["mean_rgb"], features["mean_audio"]], axis=1)
    np.testing.assert_allclose(_normalised_input(model)(features),
                               joined / np.linalg.norm(joined, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-7)
    scaled = {name: value * np.float32([[0.1], [3], [10], [1]]) for name, value in
              features.items()}
    np.testing.assert_allclose(model(scaled), model(features), rtol=1e-5, atol=1e-7)
    raw = build_model("MoeModel", spec, 7, {"l2_normalize_input": False})
    assert not np.allclose(raw(scaled), raw(features), rtol=1e-3)


def test_frame_input_is_dequantized_masked_and_l2_normalised_per_frame():
    """The model takes the reader's uint8 codes: it dequantizes them, zeroes the frames past
    each video's `num_frames` whatever they hold, and scales each frame to unit norm."""
    spec = TrainingConfig(feature_names="rgb,audio").feature_spec()
    rng = np.random.default_rng(0)
    codes = {"rgb": rng.integers(0, 256, size=(2, 5, 1024), dtype=np.uint8),
             "audio": rng.integers(0, 256, size=(2, 5, 128), dtype=np.uint8)}
    num_frames = np.int32([5, 3])
    model = build_model("FrameLevelLogisticModel", spec, 7)
    normalised = _normalised_input(model)({**codes, "num_frames": num_frames}).numpy()
    joined = dequantize_numpy(np.concatenate([codes["rgb"], codes["audio"]], axis=2))
    joined[1, 3:] = 0  # the second video has 3 frames
    norms = np.linalg.norm(joined, axis=2, keepdims=True)
    np.testing.assert_allclose(normalised, np.where(norms > 0, joined / np.maximum(norms, 1e-30),
                                                    0), rtol=1e-5, atol=1e-6)
    assert not normalised[1, 3:].any()
    other_padding = {name: value.copy() for name, value in codes.items()}
    for value in other_padding.values():
        value[1, 3:] = 255 - value[1, 3:]
    np.testing.assert_allclose(model({**other_padding, "num_frames": num_frames}),
                               model({**codes, "num_frames": num_frames}), rtol=1e-6)


def test_moe_output_is_a_mixture_of_probabilities():
    """Per class, the gates' softmax over 3 experts and the dummy weighs the experts'
    sigmoids; the dummy's share predicts 0 (a logistic model would not match)."""
    spec = TrainingConfig(model="MoeModel").feature_spec()
    model = build_model("MoeModel", spec, num_classes=7, hparams={"moe_num_mixtures": 3})
    rng = np.random.default_rng(1)
    features = {"mean_rgb": rng.random((4, 1024)).astype("float32"),
                "mean_audio": rng.random((4, 128)).astype("float32")}
    out = model(features).numpy()
    x = np.concatenate([features["mean_rgb"], features["mean_audio"]], axis=1)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # the starter's input normalisation
    gates = (x @ model.get_layer("gates").kernel.numpy()).reshape(4, 7, 4)
    gates = np.exp(gates - gates.max(axis=-1, keepdims=True))
    gates /= gates.sum(axis=-1, keepdims=True)
    experts = model.get_layer("experts")
    expert_logits = (x @ experts.kernel.numpy() + experts.bias.numpy()).reshape(4, 7, 3)
    expected = (gates[..., :3] / (1 + np.exp(-expert_logits))).sum(axis=-1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


def test_ensemble_predicts_its_members_mean_and_each_member_learns_as_if_alone():
    spec = TrainingConfig().feature_spec()
    hparams = {"mlp_hidden_size": 16, "mlp_dropout": 0.0}  # no dropout: deterministic steps
    ensemble = build_model("MlpModel", spec, 7, {**hparams, "ensemble_size": 3})
    alone = build_model("MlpModel", spec, 7, hparams)
    alone.set_weights(ensemble.members[1].get_weights())
    rng = np.random.default_rng(0)
    features = {"mean_rgb": rng.normal(size=(8, 1024)).astype("float32"),
                "mean_audio": rng.normal(size=(8, 128)).astype("float32")}
    labels = (rng.random((8, 7)) < 0.3).astype("float32")

    members = [member(features, training=False) for member in ensemble.members]
    np.testing.assert_allclose(ensemble(features, training=False), np.mean(members, axis=0),
                               rtol=1e-6)

    for model in (ensemble, alone):
        model.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0),
                      loss=get_loss("CrossEntropyLoss"))
        model.train_on_batch(features, labels)
    for trained, reference in zip(ensemble.members[1].get_weights(), alone.get_weights(),
                                  strict=True):
        np.testing.assert_allclose(trained, reference, rtol=1e-4, atol=1e-6)


def test_ensemble_trains_and_serves_like_one_model(tmp_path, shards):
    root, eval_rows = shards
    # With EMA: its shadow copies are training state, not part of the export.
    config = TrainingConfig(model="MlpModel", batch_size=16, ema_momentum=0.9, model_hparams={
        "ensemble_size": 2, "mlp_hidden_size": 32, "mlp_input_dropout": 0.2})
    evaluation = str(root / "eval.tfrecord")
    metrics = train_and_export(config, [str(root / "train.tfrecord")], [evaluation],
                               train_steps=3, export_dir=str(tmp_path / "model"),
                               log_dir=str(tmp_path / "logs"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(evaluation)]
    scores = loaded.signatures["serving_default"](examples=tf.constant(serialized))["scores"]
    assert scores.shape == (len(eval_rows), NUM_CLASSES)
    assert_runs_in_tf_servings_loader(str(tmp_path / "model"), loaded, serialized)
    assert_variables_are_what_the_signatures_read(str(tmp_path / "model"), loaded)
    by_metrics = EvaluationMetrics(NUM_CLASSES)
    by_metrics.add(scores.numpy(), np.stack([multi_hot_row(r["labels"]) for r in eval_rows]))
    assert by_metrics.result()["gap"] == pytest.approx(metrics["gap"], abs=1e-6)


def multi_hot_row(class_ids) -> np.ndarray:
    row = np.zeros(NUM_CLASSES, np.float32)
    row[list(class_ids)] = 1
    return row


def test_unknown_model_and_loss_are_named():
    spec = TrainingConfig().feature_spec()
    with pytest.raises(ValueError, match="unknown --model 'NoSuchModel'"):
        build_model("NoSuchModel", spec, 10)
    with pytest.raises(ValueError, match="unknown --label_loss 'L1'"):
        get_loss("L1")


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_losses_prefer_correct_predictions(loss_name):
    loss = get_loss(loss_name)
    labels = tf.constant([[1.0, 0.0, 0.0]])
    good = loss(labels, tf.constant([[0.9, 0.05, 0.05]]))
    bad = loss(labels, tf.constant([[0.05, 0.9, 0.05]]))
    assert float(good) < float(bad)


def test_cross_entropy_sums_over_classes_and_averages_over_batch():
    labels = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    predictions = tf.constant([[0.5, 0.5], [0.5, 0.5]])
    expected = -2 * np.log(0.5 + 1e-5)
    assert float(get_loss("CrossEntropyLoss")(labels, predictions)) == pytest.approx(
        expected, rel=1e-5)


def test_label_smoothing_moves_the_best_prediction_off_0_and_1():
    loss = get_loss("CrossEntropyLoss", label_smoothing=0.1)
    labels = tf.constant([[1.0, 0.0]])

    def at(positive, negative):
        return float(loss(labels, tf.constant([[positive, negative]])))

    # The smoothed targets are 0.95 and 0.05; sharper predictions cost more.
    assert at(0.95, 0.05) < at(0.99, 0.01) and at(0.95, 0.05) < at(0.9, 0.1)
    plain = get_loss("CrossEntropyLoss")
    sharp, soft = tf.constant([[0.99, 0.01]]), tf.constant([[0.95, 0.05]])
    assert float(plain(labels, sharp)) < float(plain(labels, soft))


@pytest.mark.parametrize("pooling", [
    BagOfFrames(8), SoftBagOfFrames(8, max_pool=True), NetVLAD(4), NetVLAD(4, light=True),
    NetFV(4), NetFV(4, couple_weights=False), NeXtVLAD(4, expansion=2, groups=2)],
    ids=lambda layer: layer.__class__.__name__)
def test_pooling_ignores_padding_frames(pooling):
    frames = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    padded = np.concatenate([frames, np.full((2, 3, 6), 7.0, "float32")], axis=1)
    num_frames = tf.constant([5, 3])
    short = frames.copy()
    short[1, 3:] = 0.0  # the second video's frames beyond 3 are padding in both inputs
    np.testing.assert_allclose(pooling(frames, num_frames, training=False),
                               pooling(padded, num_frames, training=False), rtol=1e-5)
    np.testing.assert_allclose(pooling(frames, num_frames, training=False),
                               pooling(short, num_frames, training=False), rtol=1e-5)


def test_context_gating_gates_each_feature_by_the_others():
    inputs = tf.constant([[1.0, 2.0, -1.0]])
    gating = ContextGating(add_batch_norm=False, remove_diag=True)
    gating.build(inputs.shape)
    gating.kernel.assign(tf.eye(3) * 100.0)  # only self-gating weights, which are removed
    np.testing.assert_allclose(gating(inputs), inputs * 0.5)  # sigmoid(0) everywhere
    gating.kernel.assign([[0.0, 100.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(gating(inputs), [[0.5, 2.0, -0.5]], atol=1e-6)


def test_nextvlad_descriptor_is_expanded_features_over_groups_per_cluster():
    layer = NeXtVLAD(128, expansion=2, groups=8)
    frames = np.zeros((2, 5, 1152), "float32")
    assert layer(frames, tf.constant([5, 3])).shape == (2, 2 * 1152 // 8 * 128)
    with pytest.raises(ValueError, match="must divide into 7 groups"):
        NeXtVLAD(4, expansion=1, groups=7)(frames, tf.constant([5, 3]))


@pytest.mark.parametrize("model_name,hparams,searched", [
    ("LogisticModel", {}, False),
    ("MoeModel", {}, True),
    ("MlpMoeModel", {}, True),  # its MoE head is set in its constructor
    ("MlpModel", {}, False),
    ("MlpModel", {"video_level_classifier_model": "MoeModel"}, True),
    ("DbofModel", {}, True),
    ("DbofModel", {"video_level_classifier_model": "LogisticModel"}, False),
    ("FrameLevelLogisticModel", {}, False),
])
def test_the_tuner_searches_what_the_model_takes(model_name, hparams, searched):
    import keras_tuner

    from trainer_module.tuning import define_search_space

    frame = model_name in FRAME_LEVEL_MODELS
    config = TrainingConfig(model=model_name, model_hparams=hparams,
                            feature_names="rgb,audio" if frame else "mean_rgb,mean_audio")
    space = keras_tuner.HyperParameters()
    define_search_space(space, config)
    assert ("moe_num_mixtures" in space.values) == searched
    assert {"base_learning_rate", "regularization_penalty"} <= set(space.values)


def test_a_hyperparameter_is_added_by_one_declaration(monkeypatch):
    """One field on a model's Hparams: the flag (typed, with its help and default), the range
    check, the Tuner's choices and the model object all follow, and so do the models that
    take it through their classifier."""
    import dataclasses

    from pipeline.flags import training_config_from_args
    from pipeline.run_local import build_parser
    from trainer_module.hparams import fraction, hyperparameters, setting
    from trainer_module.tuning import search_space
    from trainer_module.video_level_models import MoeHparams, MoeModel

    @hyperparameters
    class WithExpertDropout(MoeHparams):
        moe_expert_dropout: float = setting(0.1, "dropout rate on the experts' input",
                                            fraction, search=(0.0, 0.2))

    monkeypatch.setattr(MoeModel, "Hparams", WithExpertDropout)
    usage = " ".join(build_parser().format_help().split())
    assert ("--moe_expert_dropout MOE_EXPERT_DROPOUT dropout rate on the experts' input "
            "(default 0.1 in MoeModel)") in usage
    args = build_parser().parse_args(["--data_root", "d", "--model", "MlpMoeModel",
                                      "--moe_expert_dropout", "0.3"])
    training = training_config_from_args(args, "train_dir")
    assert training.model_hparams == {"moe_expert_dropout": 0.3}
    assert model_hyperparameters("MlpMoeModel", training.model_hparams)[
        "moe_expert_dropout"] == 0.3
    assert search_space(training)["moe_expert_dropout"] == (0.0, 0.2)
    assert "moe_expert_dropout" not in search_space(TrainingConfig())  # LogisticModel
    with pytest.raises(ValueError, match=r"^--moe_expert_dropout must be in \[0, 1\), "
                                         r"got 1\.5$"):
        build_model("MoeModel", TrainingConfig().feature_spec(), 7,
                    {"moe_expert_dropout": 1.5})
    from trainer_module.models import _instantiate
    assert _instantiate("MoeModel", {"moe_expert_dropout": 0.2}).hparams == WithExpertDropout(
        moe_expert_dropout=0.2)
    assert [field.name for field in dataclasses.fields(MoeHparams)] == [
        "l2_penalty", "moe_num_mixtures", "moe_prob_gating", "gating_remove_diag"]


def test_a_hyperparameter_is_declared_with_a_flag_type_and_help():
    from trainer_module.hparams import Hyperparameters, hyperparameters, setting

    with pytest.raises(TypeError, match=r"^Bad\.size: a hyperparameter is one of bool, int, "
                                        r"float, str, not int \| None$"):
        @hyperparameters
        class Bad(Hyperparameters):
            size: int | None = setting(None, "a size")
    with pytest.raises(TypeError, match=r"^Quiet\.size: declare it with setting"):
        @hyperparameters
        class Quiet(Hyperparameters):
            size: int = 3


def test_unknown_model_hyperparameters_are_refused_naming_them():
    spec = TrainingConfig().feature_spec()
    with pytest.raises(ValueError, match=r"^--model LogisticModel does not take "
                                         r"--moe_num_mixtures; it takes --l2_penalty$"):
        build_model("LogisticModel", spec, 10, {"moe_num_mixtures": 8})
    with pytest.raises(ValueError, match="^--video_level_classifier_model must be one of "
                                         "LogisticModel, MoeModel, MlpModel, MlpMoeModel, "
                                         "got Nope$"):
        build_model("MlpModel", spec, 10, {"video_level_classifier_model": "Nope"})
    with pytest.raises(ValueError, match=r"^--moe_num_mixtures must be positive, got 0$"):
        build_model("DbofModel", spec, 10, {"moe_num_mixtures": 0})
    with pytest.raises(ValueError, match=r"^--mlp_hidden_size must be int, got 2\.5$"):
        build_model("MlpModel", spec, 10, {"mlp_hidden_size": 2.5})
    assert model_hyperparameters("MlpMoeModel")["moe_prob_gating"] is True
    assert model_hyperparameters("DbofModel")["moe_num_mixtures"] == 2


def test_the_documented_model_table_is_the_generated_one():
    """docs/models.md shows `python -m pipeline.models_table`: every model with its own
    hyperparameters and defaults as the models declare them (their Hparams)."""
    import pathlib

    from pipeline.models_table import models_table

    docs = (pathlib.Path(__file__).parent.parent / "docs" / "models.md").read_text()
    table = models_table()
    assert table in docs
    assert table.count("\n") == len(MODELS) + 2
    assert "`dbof_cluster_size`=8192" in table and "`dbof_cluster_size`=4096" in table
