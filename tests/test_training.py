"""Validation during training: the exported weights are the best evaluation's. The XLA step
trains as the plain one, and only where batch shapes are fixed and on one device."""

import os

import keras
import numpy as np
import pytest

from tests.conftest import SAMPLE
from trainer_module.reader import make_dataset
from trainer_module.train import build_configured_model, compile_model, make_optimizer, uses_xla
from trainer_module.training_config import TrainingConfig
from trainer_module.validation import KeepBestOnValidation


def test_keeps_the_best_weights_and_stops_after_the_patience():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    gaps = iter([0.2, 0.5, 0.4, 0.3, 0.1, 0.9])
    weights_at_step = {}

    def evaluate():
        weights_at_step[len(weights_at_step) * 2 + 2] = model.get_weights()
        return {"gap": next(gaps)}

    validation = KeepBestOnValidation(evaluate, every_steps=2, patience=2)
    x, y = np.random.default_rng(0).normal(size=(64, 3)), np.ones((64, 1))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[validation])

    # Evaluated at steps 2, 4, 6, 8: two without a gain after step 4, so training stopped.
    assert validation.gap_by_step == [(2, 0.2), (4, 0.5), (6, 0.4), (8, 0.3)]
    assert validation.best_step == 4 and validation.step == 8
    for kept, best in zip(model.get_weights(), weights_at_step[4], strict=True):
        np.testing.assert_array_equal(kept, best)


def test_evaluates_at_the_end_when_the_last_step_is_off_the_interval():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    gaps = iter([0.1, 0.2, 0.3])
    validation = KeepBestOnValidation(lambda: {"gap": next(gaps)}, every_steps=2,
                                      initial_step=10)
    x, y = np.zeros((20, 3)), np.ones((20, 1))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[validation])
    assert validation.gap_by_step == [(12, 0.1), (14, 0.2), (15, 0.3)]
    assert validation.best_step == 15


def _fit_with_moving_average(callbacks, momentum: float):
    keras.utils.set_random_seed(0)
    config = TrainingConfig(ema_momentum=momentum, base_learning_rate=0.1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(config), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.ones((16, 1))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False,
              callbacks=callbacks(model))
    return model


def test_validation_sees_the_moving_average_and_does_not_disturb_training():
    """The weights validation sees are the moving average of the trained weights, computed here
    by hand as Keras documents it (`ema_momentum`: the average starts at the first step's
    weights, then average = m * average + (1 - m) * weights after each step)."""
    momentum = 0.5
    trained, seen = [], []

    def callbacks(model):
        def record(batch, logs):
            trained.append(model.get_weights())

        def evaluate():
            seen.append((len(trained), model.get_weights()))
            return {"gap": len(seen)}  # always better: the last step is kept
        # The recorder runs first, so it sees the trained weights, not the averages.
        return [keras.callbacks.LambdaCallback(on_train_batch_end=record),
                KeepBestOnValidation(evaluate, every_steps=2)]

    validated = _fit_with_moving_average(callbacks, momentum)
    unvalidated = _fit_with_moving_average(lambda model: [], momentum)

    averages = [trained[0]]
    for weights in trained[1:]:
        averages.append([momentum * a + (1 - momentum) * w
                         for a, w in zip(averages[-1], weights, strict=True)])
    assert [step for step, _ in seen] == [2, 4]
    for step, weights in seen:
        for weight, average in zip(weights, averages[step - 1], strict=True):
            np.testing.assert_allclose(weight, average, rtol=1e-6)
    assert not np.allclose(trained[-1][0], averages[-1][0])  # the average is not the weights
    # The model ends with the average, and validating on the way changed nothing.
    for a, b in zip(validated.get_weights(), unvalidated.get_weights(), strict=True):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(validated.get_weights()[0], averages[-1][0], rtol=1e-6)


@pytest.mark.parametrize("model_name", ["LogisticModel", "MlpMoeModel"])
def test_trained_l2_penalty_is_the_constructors_default_times_the_regularization_penalty(
        monkeypatch, model_name):
    """The penalty has one home, the models' declarations: change its default and what
    trains changes with it (scaled by --regularization_penalty, as the starter code does)."""
    from trainer_module import video_level_models
    from trainer_module.hparams import hyperparameters, redefault

    config = TrainingConfig(model=model_name, regularization_penalty=3.0)
    for model_class in (video_level_models.LogisticModel, video_level_models.MoeModel):
        @hyperparameters
        class Redefaulted(model_class.Hparams):
            l2_penalty: float = redefault(video_level_models.LogisticHparams, "l2_penalty",
                                          4e-6)
        monkeypatch.setattr(model_class, "Hparams", Redefaulted)
    model = build_configured_model(config)
    penalties = {layer.name: layer.kernel_regularizer.l2 for layer in model.layers
                 if getattr(layer, "kernel_regularizer", None) is not None}
    assert penalties
    # slim.l2_regularizer(scale) is scale * sum(w**2) / 2; Keras's L2(l2) is l2 * sum(w**2).
    np.testing.assert_allclose(list(penalties.values()), 4e-6 * 3.0 / 2, rtol=1e-6)


@pytest.mark.parametrize("model_name", ["LogisticModel", "MoeModel"])
def test_the_xla_step_trains_as_the_plain_step(model_name):
    weights = {}
    for jit_compile in (False, True):
        config = TrainingConfig(model=model_name, batch_size=64, jit_compile=jit_compile)
        batches = make_dataset(os.path.join(SAMPLE, "train", "*.tfrecord"),
                               config.feature_spec(), config.num_classes, 64).take(3)
        keras.utils.set_random_seed(0)
        model = compile_model(config)
        assert model.jit_compile is jit_compile
        model.fit(batches, epochs=1, verbose=0, shuffle=False)
        weights[jit_compile] = model.get_weights()
    largest = max(float(np.max(np.abs(plain - xla)))
                  for plain, xla in zip(weights[False], weights[True], strict=True))
    print(f"{model_name}: largest weight difference after 3 steps, XLA vs plain: {largest:.2g}")
    assert largest < 1e-5  # float sums in another order; a step moves a weight up to ~0.01


def test_xla_only_where_batch_shapes_are_fixed_and_on_one_device():
    assert uses_xla(TrainingConfig())
    assert not uses_xla(TrainingConfig(jit_compile=False))
    assert not uses_xla(TrainingConfig(model="FrameLevelLogisticModel", feature_names="rgb,audio"))
    assert not uses_xla(TrainingConfig(distribution="mirrored"))
