"""YouTube-8M metrics (GAP@k, mAP, Hit@1, PERR, video count) as TFMA custom metrics.

The numbers come from `trainer_module.metrics.EvaluationMetrics`, the same implementation the
Trainer and the CLIs use; this module adapts it to TFMA (a preprocessor and a CombineFn).
`components.tfma_extractors` gives the Evaluator extractors that hand these metrics whole
batches of a slice instead of single examples.

Use in an EvalConfig, one MetricConfig per metric (so each may carry its own threshold):
    config_pb2.MetricConfig(class_name="GlobalAveragePrecision", module="components.tfma_metrics",
                      config='{"num_classes": 3862, "top_k": 20}')
The metrics share one accumulator, and each video is reduced to its top-k scores once per
model, before TFMA fans it out to its slices. With `"pools_on_local_disk": true` (only for
Beam running in this process) the accumulators travel between Beam's stages as files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

from components.pool_files import PoolOnLocalDisk
from contract.saved_model import TOP_K
from trainer_module.features import NUM_CLASSES_2018, VERTICALS_KEY
from trainer_module.metrics import METRIC_NAMES, EvaluationMetrics
from trainer_module.video_scores import VideoScores


class _YouTube8MMetric(tfma.metrics.Metric):
    """Base of the four metrics; they share one accumulator, which TFMA computes once."""

    metric_name = ""

    def __init__(self, num_classes: int = NUM_CLASSES_2018, top_k: int = TOP_K,
                 name: str | None = None, pools_on_local_disk: bool = False):
        super().__init__(_computations, num_classes=num_classes, top_k=top_k,
                         name=name or self.metric_name, metric_name=self.metric_name,
                         pools_on_local_disk=pools_on_local_disk)


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


class VideoCount(_YouTube8MMetric):
    """How many videos were evaluated, under the name of TFMA's `ExampleCount`, which would
    count batches when the extractors hand over whole batches."""

    metric_name = "example_count"


METRIC_CLASSES = (GlobalAveragePrecision, MeanAveragePrecision, HitAtOne,
                  PrecisionAtEqualRecallRate, VideoCount)
# Where `components.tfma_extractors` leaves a batch's VideoScores, as {model_name: scores}.
VIDEO_SCORES_KEY = "_youtube8m_video_scores"
for _metric_class in METRIC_CLASSES:
    metric_types.register_metric(_metric_class)


class PickMetric:
    """Derives one metric's value from the shared accumulator's result."""

    def __init__(self, key, accumulator_key, metric_name: str):
        self.key, self.accumulator_key, self.metric_name = key, accumulator_key, metric_name

    def __call__(self, metrics: dict) -> dict:
        return {self.key: metrics[self.accumulator_key][self.metric_name]}


def shared_accumulator_computations(
        name: str, metric_name: str, accumulator_name: str, preprocessor, combiner,
        model_names=None, output_names=None,
        example_weighted=False) -> metric_types.MetricComputations:
    """Per model and output: one accumulator computation (`preprocessor(key)`,
    `combiner(key)`) that TFMA runs once however many metrics share `accumulator_name`,
    and the metric `name` derived from its `metric_name` result. A leading underscore in
    `accumulator_name` keeps the accumulator out of the written metrics."""
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            accumulator_key = metric_types.MetricKey(
                name=accumulator_name, model_name=model_name, output_name=output_name,
                example_weighted=example_weighted)
            key = metric_types.MetricKey(name=name, model_name=model_name,
                                         output_name=output_name,
                                         example_weighted=example_weighted)
            computations.append(metric_types.MetricComputation(
                keys=[accumulator_key], preprocessors=[preprocessor(accumulator_key)],
                combiner=combiner(accumulator_key)))
            computations.append(metric_types.DerivedMetricComputation(
                keys=[key], result=PickMetric(key, accumulator_key, metric_name)))
    return computations


def _computations(num_classes: int, top_k: int, name: str, metric_name: str,
                  pools_on_local_disk: bool, eval_config=None, model_names=None,
                  output_names=None, example_weighted=False,
                  **unused) -> metric_types.MetricComputations:
    accumulator = PoolOnLocalDisk if pools_on_local_disk else EvaluationMetrics
    return shared_accumulator_computations(
        name, metric_name, f"_youtube8m_top{top_k}_of_{num_classes}",
        lambda key: _VideoScoresPreprocessor(key, eval_config, num_classes, top_k),
        lambda key: _YouTube8MCombiner(key, accumulator, num_classes, top_k),
        model_names, output_names, example_weighted)


class _VideoScoresPreprocessor(metric_types.Preprocessor):
    """Reduces one example's labels and scores to its `VideoScores` (top-k, Hit@1, PERR).

    TFMA runs preprocessors once per example and model, before it fans each example out to
    its slices (overall and every vertical); the combiners then only collect a few numbers
    per slice instead of reducing num_classes scores again in each.
    """

    def __init__(self, key: metric_types.MetricKey, eval_config, num_classes: int,
                 top_k: int):
        super().__init__(name=metric_util.generate_private_name_from_arguments(
            "youtube8m_video_scores", model_name=key.model_name,
            output_name=key.output_name, num_classes=num_classes, top_k=top_k))
        self._key = key
        self._eval_config = eval_config
        self._num_classes = num_classes
        self._top_k = top_k

    def process(self, extracts) -> Iterator[VideoScores]:
        key = self._key
        if VIDEO_SCORES_KEY in extracts:  # a batch of one slice, reduced by our extractors
            yield extracts[VIDEO_SCORES_KEY][key.model_name]
            return
        labels, predictions, _ = next(metric_util.to_label_prediction_example_weight(
            metric_types.StandardMetricInputs(extracts), eval_config=self._eval_config,
            model_name=key.model_name, output_name=key.output_name, flatten=False,
            squeeze=True))
        predictions = np.asarray(predictions, np.float32).reshape(1, -1)
        labels = np.asarray(labels).reshape(1, -1)
        if predictions.shape != (1, self._num_classes) or labels.shape != predictions.shape:
            raise ValueError(
                f"YouTube8MMetrics expects a dense multi-hot label and scores of "
                f"{self._num_classes} classes; got labels {labels.shape[1:]} and scores "
                f"{predictions.shape[1:]}")
        yield VideoScores.of(predictions, labels, self._top_k)


class _YouTube8MCombiner(beam.CombineFn):
    def __init__(self, key, accumulator: type[EvaluationMetrics], num_classes: int,
                 top_k: int):
        self._key = key
        self._accumulator = accumulator
        self._num_classes = num_classes
        self._top_k = top_k

    def create_accumulator(self) -> EvaluationMetrics:
        return self._accumulator(self._num_classes, self._top_k)

    def add_input(self, accumulator: EvaluationMetrics,
                  element: VideoScores) -> EvaluationMetrics:
        accumulator.add_scores(element)
        return accumulator

    def merge_accumulators(self, accumulators) -> EvaluationMetrics:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        result.compact()
        return result

    def compact(self, accumulator: EvaluationMetrics) -> EvaluationMetrics:
        accumulator.compact()
        return accumulator

    def extract_output(self, accumulator: EvaluationMetrics) -> dict:
        if accumulator.num_examples == 0:
            return {self._key: {**{name: float("nan") for name in METRIC_NAMES},
                                VideoCount.metric_name: 0}}
        result = accumulator.result()
        return {self._key: {**result, VideoCount.metric_name: result["num_examples"]}}


def top_k_of(eval_config: config_pb2.EvalConfig) -> int:
    """How many top classes of each video the YouTube-8M metrics in `eval_config` pool (their
    shared accumulator's top_k, at most the number of classes)."""
    config = next(metric for spec in eval_config.metrics_specs for metric in spec.metrics
                  if metric.module == __name__)
    metric = globals()[config.class_name](**json.loads(config.config or "{}"))
    return min(metric.kwargs["top_k"], metric.kwargs["num_classes"])


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


def tfma_vertical_rows(evaluation_uri: str) -> list[tuple[str, int, float]]:
    """(vertical, videos, GAP) of the candidate model from the Evaluator's `vertical1` slices."""
    from trainer_module.transform import NO_LABELS_VERTICAL

    prefix = f"{VERTICALS_KEY}:"
    return [(name[len(prefix):], int(metrics[VideoCount.metric_name]), metrics["gap"])
            for name, metrics in load_evaluation(evaluation_uri)["candidate"].items()
            if name.startswith(prefix) and name != prefix + NO_LABELS_VERTICAL]
