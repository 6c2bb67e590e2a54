"""Validation during training: the exported weights are the best evaluation's."""

import keras
import numpy as np

from trainer_module.train import KeepBestOnValidation, make_optimizer
from trainer_module.training_config import TrainingConfig


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


def _fit_with_moving_average(callbacks):
    keras.utils.set_random_seed(0)
    config = TrainingConfig(ema_momentum=0.5, base_learning_rate=0.1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(config), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.ones((16, 1))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False,
              callbacks=callbacks(model))
    return model


def test_validation_sees_the_moving_average_and_does_not_disturb_training():
    seen = []

    def callbacks(model):
        def evaluate():
            averages = [v.numpy() for v in model.optimizer._model_variables_moving_average]
            seen.append((model.get_weights(), averages))
            return {"gap": len(seen)}  # always better: the last step is kept
        return [KeepBestOnValidation(evaluate, every_steps=2)]

    validated = _fit_with_moving_average(callbacks)
    unvalidated = _fit_with_moving_average(lambda model: [])

    assert len(seen) == 2  # steps 2 and 4
    for weights, averages in seen:
        for weight, average in zip(weights, averages, strict=True):
            np.testing.assert_allclose(weight, average)
    # The model ends with the average, and validating on the way changed nothing.
    for a, b in zip(validated.get_weights(), unvalidated.get_weights(), strict=True):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(validated.get_weights()[0], seen[-1][1][0])
