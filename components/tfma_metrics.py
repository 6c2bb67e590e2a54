"""YouTube-8M metrics (GAP@k, mAP, Hit@1, PERR) as a TFMA custom metric for the Evaluator.

The numbers come from `trainer_module.metrics.EvaluationMetrics`, the same implementation the
Trainer and the CLIs use; this module only adapts it to TFMA's Beam CombineFn interface.

Use in an EvalConfig, one MetricConfig per metric (so each may carry its own threshold):
    tfma.MetricConfig(class_name="GlobalAveragePrecision", module="components.tfma_metrics",
                      config='{"num_classes": 3862, "top_k": 20}')
The four metrics share one accumulator, so the examples are scored once.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util

from trainer_module.features import NUM_CLASSES_2018
from trainer_module.metrics import METRIC_NAMES, EvaluationMetrics

# Examples arrive one at a time; scoring them in batches keeps numpy's per-call cost low.
_FLUSH_EVERY = 512


class _YouTube8MMetric(tfma.metrics.Metric):
    """Base of the four metrics; they share one accumulator, which TFMA computes once."""

    metric_name = ""

    def __init__(self, num_classes: int = NUM_CLASSES_2018, top_k: int = 20,
                 name: str | None = None):
        super().__init__(_computations, num_classes=num_classes, top_k=top_k,
                         name=name or self.metric_name, metric_name=self.metric_name)


class GlobalAveragePrecision(_YouTube8MMetric):
    """GAP@top_k: AP of every video's top-k scores pooled (the Kaggle metric)."""

    metric_name = "gap"


class MeanAveragePrecision(_YouTube8MMetric):
    """Per-class AP over the top-k pool, averaged over all classes."""

    metric_name = "map"


class HitAtOne(_YouTube8MMetric):
    """Fraction of videos whose top-scoring class is a true label."""

    metric_name = "hit_at_one"


class PrecisionAtEqualRecallRate(_YouTube8MMetric):
    """Per video with n labels, precision of the top-n scores; averaged over videos."""

    metric_name = "perr"


METRIC_CLASSES = (GlobalAveragePrecision, MeanAveragePrecision, HitAtOne,
                  PrecisionAtEqualRecallRate)
for _metric_class in METRIC_CLASSES:
    metric_types.register_metric(_metric_class)


class _PickMetric:
    """Derives one metric's value from the shared accumulator's result."""

    def __init__(self, key, accumulator_key, metric_name: str):
        self.key, self.accumulator_key, self.metric_name = key, accumulator_key, metric_name

    def __call__(self, metrics: dict) -> dict:
        return {self.key: metrics[self.accumulator_key][self.metric_name]}


def _computations(num_classes: int, top_k: int, name: str, metric_name: str,
                  eval_config=None, model_names=None, output_names=None,
                  example_weighted=False, **unused) -> metric_types.MetricComputations:
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            # A leading underscore keeps the shared accumulator out of the written metrics.
            accumulator_key = metric_types.MetricKey(
                name=f"_youtube8m_top{top_k}_of_{num_classes}", model_name=model_name,
                output_name=output_name, example_weighted=example_weighted)
            key = metric_types.MetricKey(name=name, model_name=model_name,
                                         output_name=output_name,
                                         example_weighted=example_weighted)
            computations.append(metric_types.MetricComputation(
                keys=[accumulator_key], preprocessors=None,
                combiner=_YouTube8MCombiner(accumulator_key, eval_config, num_classes, top_k)))
            computations.append(metric_types.DerivedMetricComputation(
                keys=[key], result=_PickMetric(key, accumulator_key, metric_name)))
    return computations


class _Accumulator:
    __slots__ = ["metrics", "predictions", "labels"]

    def __init__(self, num_classes: int, top_k: int):
        self.metrics = EvaluationMetrics(num_classes, top_k)
        self.predictions: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def flush(self) -> None:
        if self.predictions:
            self.metrics.add(np.stack(self.predictions), np.stack(self.labels))
            self.predictions, self.labels = [], []


class _YouTube8MCombiner(beam.CombineFn):
    def __init__(self, key, eval_config, num_classes: int, top_k: int):
        self._key = key
        self._eval_config = eval_config
        self._num_classes = num_classes
        self._top_k = top_k

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator(self._num_classes, self._top_k)

    def add_input(self, accumulator: _Accumulator, element) -> _Accumulator:
        key = self._key
        labels, predictions, _ = next(metric_util.to_label_prediction_example_weight(
            element, eval_config=self._eval_config, model_name=key.model_name,
            output_name=key.output_name, flatten=False, squeeze=True))
        predictions = np.asarray(predictions, np.float32).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        if predictions.shape != (self._num_classes,) or labels.shape != predictions.shape:
            raise ValueError(
                f"YouTube8MMetrics expects a dense multi-hot label and scores of "
                f"{self._num_classes} classes; got labels {labels.shape} and scores "
                f"{predictions.shape}")
        accumulator.predictions.append(predictions)
        accumulator.labels.append(labels)
        if len(accumulator.predictions) >= _FLUSH_EVERY:
            accumulator.flush()
        return accumulator

    def merge_accumulators(self, accumulators) -> _Accumulator:
        accumulators = iter(accumulators)
        result = next(accumulators)
        result.flush()
        for accumulator in accumulators:
            accumulator.flush()
            result.metrics.merge(accumulator.metrics)
        result.metrics.compact()
        return result

    def compact(self, accumulator: _Accumulator) -> _Accumulator:
        accumulator.flush()
        accumulator.metrics.compact()
        return accumulator

    def extract_output(self, accumulator: _Accumulator) -> dict:
        accumulator.flush()
        if accumulator.metrics.num_examples == 0:
            return {self._key: {name: float("nan") for name in METRIC_NAMES}}
        return {self._key: accumulator.metrics.result()}


def load_evaluation(evaluation_uri: str) -> dict[str, dict[str, dict[str, float]]]:
    """The Evaluator's metrics as {model: {slice: {metric: value}}}.

    `model` is "candidate" or "baseline" (a run without a baseline has only "candidate");
    `slice` is "Overall" or a slice such as "vertical1:Games". Diffs are left out.
    """
    result: dict[str, dict[str, dict[str, float]]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        slice_name = tfma.slicer.stringify_slice_key(
            tfma.slicer.deserialize_slice_key(slice_metrics.slice_key))
        for entry in slice_metrics.metric_keys_and_values:
            if entry.key.is_diff:
                continue
            model = "baseline" if entry.key.model_name == "baseline" else "candidate"
            by_slice = result.setdefault(model, {}).setdefault(slice_name, {})
            by_slice[entry.key.name] = entry.value.double_value.value
    return result
