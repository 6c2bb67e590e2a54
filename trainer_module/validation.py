"""Validation while training: the optimizer's moving-average weights for the time of an
evaluation, and the callback that keeps the best evaluated weights (with early stopping)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import keras

log = logging.getLogger(__name__)


@contextlib.contextmanager
def moving_average_weights(model: keras.Model) -> Iterator[None]:
    """Within the block, `model` holds its optimizer's moving-average weights, if it keeps
    any; training goes on from the weights it had before."""
    optimizer = model.optimizer
    if not getattr(optimizer, "use_ema", False):
        yield
        return
    variables = model.trainable_variables
    trained = [variable.numpy() for variable in variables]
    optimizer.finalize_variable_values(variables)  # the model takes the averages
    try:
        yield
    finally:
        for variable, value in zip(variables, trained, strict=True):
            variable.assign(value)


class KeepBestOnValidation(keras.callbacks.Callback):
    """Validation GAP every `every_steps` steps and at the end; the model ends with the weights
    of its best evaluation. With `patience`, training stops after that many evaluations
    without a better GAP. With a moving average of the weights, that is what is evaluated."""

    def __init__(self, evaluate: Callable[[], dict[str, float]], every_steps: int,
                 patience: int = 0, initial_step: int = 0, metric: str = "gap"):
        super().__init__()
        self.evaluate = evaluate
        self.metric = metric  # the one of evaluate()'s results that decides
        self.every_steps = every_steps
        self.patience = patience
        self.step = initial_step
        self.gap_by_step: list[tuple[int, float]] = []
        self.best_step: int | None = None
        self._best_gap = float("-inf")
        self._best_weights = None
        self._evaluations_without_gain = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every_steps == 0:
            self._evaluate()

    def on_train_end(self, logs=None):
        if not self.gap_by_step or self.gap_by_step[-1][0] != self.step:
            self._evaluate()
        if self.best_step != self.step:
            log.info("keeping the weights of step %d (validation GAP %.4f)",
                        self.best_step, self._best_gap)
            self.model.set_weights(self._best_weights)

    def _evaluate(self):
        with moving_average_weights(self.model):
            gap = self.evaluate()[self.metric]
            better = gap > self._best_gap
            if better:
                self._best_weights = self.model.get_weights()
        self.gap_by_step.append((self.step, gap))
        log.info("step %d: validation %s %.4f", self.step, self.metric, gap)
        if better:
            self._best_gap, self.best_step = gap, self.step
            self._evaluations_without_gain = 0
            return
        self._evaluations_without_gain += 1
        if self.patience and self._evaluations_without_gain >= self.patience:
            log.info("no better validation GAP in %d evaluations: stopping", self.patience)
            self.model.stop_training = True
