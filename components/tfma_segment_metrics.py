"""Segment MAP@K (the 2019 metric) as a TFMA custom metric, for the Evaluator on
segment-rated data.

The numbers come from `trainer_module.segment_metrics.SegmentRanking`, which `make
evaluate` and the Trainer use too. Each example is one video; the model's
`serving_segments` signature scores all its segments ([segments, 1,000 classes], padded
per batch) and its `segment_ratings` signature, the EvalConfig's preprocessing function,
gives their ratings as the label:

    config_pb2.ModelSpec(signature_name=SERVING_SEGMENTS_SIGNATURE,
                         label_key=SEGMENT_RATINGS_OUTPUT,
                         preprocessing_function_names=[SEGMENT_RATINGS_SIGNATURE])
    config_pb2.MetricConfig(class_name="SegmentMeanAveragePrecision",
                            module="components.tfma_segment_metrics",
                            config='{"max_pred": 100000}')

Every slice's accumulator keeps the top `max_pred` segments of each class, merged across
Beam workers. TFMA's per-example path serves it (the batch-keeping extractors of
`components.tfma_extractors` are for the video metrics only).
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.metrics import metric_types, metric_util

from components.tfma_extractors import model_value
from components.tfma_metrics import shared_accumulator_computations
from contract.saved_model import (
    SEGMENT_IDS_OUTPUT,
    SEGMENT_SCORES_OUTPUT,
    SEGMENT_START_TIMES_OUTPUT,
)
from trainer_module.segment_metrics import SegmentRanking
from trainer_module.segments import SEGMENT_MAX_PRED, segment_class_ids

SEGMENT_MAP_NAME = "segment_map"
SEGMENT_COUNT_NAME = "segment_count"


class _SegmentMetric(tfma.metrics.Metric):
    """Base of the segment metrics; they share one accumulator, which TFMA computes once."""

    metric_name = ""

    def __init__(self, max_pred: int = SEGMENT_MAX_PRED, name: str | None = None):
        super().__init__(_computations, max_pred=max_pred, name=name or self.metric_name,
                         metric_name=self.metric_name)


class SegmentMeanAveragePrecision(_SegmentMetric):
    """MAP@max_pred over the rated segments, as the starter's segment_eval_inference.py."""

    metric_name = SEGMENT_MAP_NAME


class SegmentCount(_SegmentMetric):
    """How many segments were scored (rated or not)."""

    metric_name = SEGMENT_COUNT_NAME


SEGMENT_METRIC_CLASSES = (SegmentMeanAveragePrecision, SegmentCount)
for _metric_class in SEGMENT_METRIC_CLASSES:
    metric_types.register_metric(_metric_class)


def _computations(max_pred: int, name: str, metric_name: str, eval_config=None,
                  model_names=None, output_names=None, example_weighted=False,
                  **unused) -> metric_types.MetricComputations:
    return shared_accumulator_computations(
        name, metric_name, f"_youtube8m_segments_top{max_pred}", _SegmentsPreprocessor,
        lambda key: _SegmentRankingCombiner(key, max_pred), model_names, output_names,
        example_weighted)


class _SegmentsPreprocessor(metric_types.Preprocessor):
    """One video's real segments: (ids, scores [segments, classes], ratings)."""

    def __init__(self, key: metric_types.MetricKey):
        super().__init__(name=metric_util.generate_private_name_from_arguments(
            "youtube8m_segments", model_name=key.model_name, output_name=key.output_name))
        self._key = key

    def process(self, extracts) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        outputs = model_value(extracts[constants.PREDICTIONS_KEY], self._key.model_name)
        ratings = np.asarray(model_value(extracts[constants.LABELS_KEY], self._key.model_name))
        present = np.asarray(outputs[SEGMENT_START_TIMES_OUTPUT]).reshape(-1) >= 0
        scores = np.asarray(outputs[SEGMENT_SCORES_OUTPUT], np.float32)
        yield (np.asarray(outputs[SEGMENT_IDS_OUTPUT]).reshape(-1)[present],
               scores.reshape(-1, scores.shape[-1])[present],
               ratings.reshape(-1, scores.shape[-1])[present])


class _SegmentRankingCombiner(beam.CombineFn):
    def __init__(self, key, max_pred: int):
        self._key = key
        self._max_pred = max_pred

    def create_accumulator(self) -> SegmentRanking:
        return SegmentRanking(segment_class_ids(), self._max_pred)

    def add_input(self, accumulator: SegmentRanking, element) -> SegmentRanking:
        accumulator.add(*element)
        return accumulator

    def merge_accumulators(self, accumulators) -> SegmentRanking:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        return result

    def extract_output(self, accumulator: SegmentRanking) -> dict:
        return {self._key: accumulator.result()}
