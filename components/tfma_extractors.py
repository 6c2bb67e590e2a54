"""The Evaluator's extractors (`custom_extractors`, which TFX calls from `module_path`).

TFMA's default path unbatches every example, finds its slices, fans it out and runs each
metric's preprocessor and combiner on it, once per model: at 8 k videos that per-example
path was nine tenths of the Evaluator's time while the models' own work was a tenth. When
every metric is one of `components.tfma_metrics` and the slices are feature slices, the
metrics only need each slice's `VideoScores`, so these extractors keep the batch instead:

1. the serialized examples are named for the signatures' input (see
   `serialized_examples_extractor`);
2. each model's batch is reduced to `VideoScores` from the signature's own top-k outputs;
3. the batch's videos are grouped by slice (TFMA's own slice-key function, on the slicing
   features only) and each slice's group leaves as one extract.

TFMA's fan-out then sends each group to its one slice, and the combiners add whole groups.
Any other metric or slicing (TFMA metrics, SQL or cross slices, confidence intervals,
default model metrics) gets TFMA's per-example path, which `tfma_metrics` also serves.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor, unbatch_extractor
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.slicer import slice_accessor, slicer_lib
from tensorflow_model_analysis.utils import util as tfma_util

from components import tfma_metrics
from components.compat import FEATURES_EXTRACTOR_STAGE_NAME
from components.tfma_metrics import VIDEO_SCORES_KEY
from contract.saved_model import (
    SERIALIZED_EXAMPLES_INPUT,
    TOP_K_CLASS_IDS_OUTPUT,
    TOP_K_SCORES_OUTPUT,
)
from trainer_module.metrics import VideoScores

# The default stages whose per-example work `slice_groups_extractor` replaces.
PER_EXAMPLE_STAGES = (unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME,
                      slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME)


def keeps_batches(eval_config: config_pb2.EvalConfig) -> bool:
    """Whether every metric is ours and every slice a feature slice, so that a batch's
    videos may travel per slice instead of per example."""
    metrics = [metric for spec in eval_config.metrics_specs for metric in spec.metrics]
    options = eval_config.options
    return (bool(metrics)
            and all(metric.module == tfma_metrics.__name__ for metric in metrics)
            and not any(spec.query_key for spec in eval_config.metrics_specs)
            and not any(spec.slice_keys_sql for spec in eval_config.slicing_specs)
            and not eval_config.cross_slicing_specs
            and not options.compute_confidence_intervals.value
            and options.HasField("include_default_metrics")
            and not options.include_default_metrics.value)


def model_value(batched_value, model_name: str):
    """One model's labels or predictions (TFMA nests them by model name when it evaluates
    several)."""
    if isinstance(batched_value, Mapping) and model_name in batched_value:
        return batched_value[model_name]
    return batched_value


def batch_video_scores(batched_extracts: dict, model_spec: config_pb2.ModelSpec,
                       top_k: int) -> VideoScores:
    """A model's batch reduced to VideoScores; from the signature's ranked top-k outputs
    when it has them for this k, otherwise from all scores."""
    outputs = model_value(batched_extracts[constants.PREDICTIONS_KEY], model_spec.name)
    labels = model_value(batched_extracts[constants.LABELS_KEY], model_spec.name)
    if not isinstance(outputs, Mapping):
        return VideoScores.of(outputs, labels, top_k)
    scores = outputs[model_spec.prediction_key]
    ranked_ids = outputs.get(TOP_K_CLASS_IDS_OUTPUT)
    if ranked_ids is not None and ranked_ids.shape[1] == min(top_k, scores.shape[1]):
        return VideoScores.of_ranked(ranked_ids, outputs[TOP_K_SCORES_OUTPUT], scores, labels)
    return VideoScores.of(scores, labels, top_k)


@beam.typehints.with_input_types(dict)
@beam.typehints.with_output_types(dict)
class _GroupBySlice(beam.DoFn):
    def __init__(self, eval_config: config_pb2.EvalConfig, top_k: int):
        self._model_specs = list(eval_config.model_specs)
        self._top_k = top_k
        self._slice_specs = ([slicer_lib.SingleSliceSpec(spec=spec)
                              for spec in eval_config.slicing_specs]
                             or [slicer_lib.SingleSliceSpec()])
        self._slicing_features = {name for spec in eval_config.slicing_specs
                                  for name in (*spec.feature_keys, *spec.feature_values)}
        self._slice_keys = slice_key_extractor.ExtractSliceKeysFn(eval_config,
                                                                  materialize=False)
        # Slices by one column each (or overall) are found per distinct value, not per video.
        self._slice_columns = None
        if all(len(spec.feature_keys) <= 1 and not spec.feature_values
               for spec in eval_config.slicing_specs):
            self._slice_columns = [next(iter(spec.feature_keys), None)
                                   for spec in eval_config.slicing_specs] or [None]
        self._key_of_value: dict[tuple, tuple] = {}

    def process(self, batched_extracts: dict) -> Iterator[dict]:
        scores = {spec.name: batch_video_scores(batched_extracts, spec, self._top_k)
                  for spec in self._model_specs}
        num_videos = len(next(iter(scores.values())).perr)
        for slice_key, videos in self._videos_by_slice(batched_extracts, num_videos):
            yield {constants.SLICE_KEY_TYPES_KEY: [slice_key],
                   VIDEO_SCORES_KEY: {name: model_scores.select(videos)
                                      for name, model_scores in scores.items()}}

    def _videos_by_slice(self, batched_extracts: dict,
                         num_videos: int) -> Iterator[tuple[tuple, np.ndarray]]:
        """(slice key, boolean mask of its videos) for every slice in the batch."""
        if not self._slicing_features:
            yield (), np.ones(num_videos, bool)
            return
        by_value = self._slice_columns and self._videos_by_value(batched_extracts, num_videos)
        if by_value is not None:
            yield from by_value.items()
            return
        # Unbatch only the slicing features, and let TFMA find each video's slice keys.
        slicing_columns = {key: _only(batched_extracts.get(key), self._slicing_features)
                           for key in (constants.FEATURES_KEY,
                                       constants.TRANSFORMED_FEATURES_KEY)
                           if batched_extracts.get(key) is not None}
        by_video = (_split_dense(slicing_columns, num_videos)
                    or tfma_util.split_extracts(slicing_columns))
        members: dict[tuple, list[int]] = {}
        for video, columns in enumerate(by_video):
            keyed = self._slice_keys.process(columns, self._slice_specs)[0]
            for slice_key in keyed[constants.SLICE_KEY_TYPES_KEY]:
                members.setdefault(slice_key, []).append(video)
        for slice_key, videos in members.items():
            mask = np.zeros(num_videos, bool)
            mask[videos] = True
            yield slice_key, mask


    def _videos_by_value(self, batched_extracts: dict,
                         num_videos: int) -> dict[tuple, np.ndarray] | None:
        """{slice key: mask of its videos} when every slice is overall or by one column and
        each column is a numpy array with the videos first; None otherwise.

        As TFMA's slice accessor does, a column's values are those of every model's
        transformed features, else of the raw features; each distinct value is one slice,
        keyed by TFMA itself."""
        masks: dict[tuple, np.ndarray] = {}
        for column in self._slice_columns:
            if column is None:
                masks[()] = np.ones(num_videos, bool)
                continue
            arrays = self._column_arrays(batched_extracts, column)
            if not all(isinstance(array, np.ndarray) and array.ndim in (1, 2)
                       and len(array) == num_videos for array in arrays):
                return None
            if not arrays:  # no video has the column: no slice, as in TFMA
                continue
            rows = np.concatenate([array.reshape(num_videos, -1) for array in arrays], axis=1)
            values, positions = np.unique(rows, return_inverse=True)
            has_value = np.zeros((num_videos, len(values)), bool)
            has_value[np.repeat(np.arange(num_videos), rows.shape[1]), positions.ravel()] = True
            for index, value in enumerate(values):
                key = self._slice_key(column, value)
                masks[key] = masks.get(key, False) | has_value[:, index]
        return masks

    def _column_arrays(self, batched_extracts: dict, column: str) -> list:
        transformed = batched_extracts.get(constants.TRANSFORMED_FEATURES_KEY)
        dicts = []
        if transformed is not None:
            dicts = ([transformed] if len(self._model_specs) == 1 else
                     [transformed[spec.name] for spec in self._model_specs
                      if spec.name in transformed])
        arrays = [features[column] for features in dicts if features.get(column) is not None]
        raw = batched_extracts.get(constants.FEATURES_KEY) or {}
        if not arrays and raw.get(column) is not None:
            arrays = [raw[column]]
        return arrays

    def _slice_key(self, column: str, value) -> tuple:
        """TFMA's slice key for one value of a column (its text and number conversions)."""
        if (column, value) not in self._key_of_value:
            accessor = slice_accessor.SliceAccessor([{column: np.array([value])}])
            (self._key_of_value[column, value],) = slicer_lib.SingleSliceSpec(
                columns=[column]).generate_slices(accessor)
        return self._key_of_value[column, value]


def _split_dense(columns: dict, num_videos: int) -> list[dict] | None:
    """`columns` per video when every value is a numpy array with the videos first, as
    TFMA's `split_extracts` splits them (a [videos] array gives each video a 1-value array)
    without its per-value conversions; None for any other value (sparse, ragged)."""
    leaves = []

    def collect(node):
        for value in node.values():
            if isinstance(value, Mapping):
                collect(value)
            else:
                leaves.append(value)

    collect(columns)
    if not all(isinstance(leaf, np.ndarray) and leaf.ndim in (1, 2)
               and len(leaf) == num_videos for leaf in leaves):
        return None

    def row(node, video):
        return {key: row(value, video) if isinstance(value, Mapping)
                else value[video] if value.ndim == 2 else value[video:video + 1]
                for key, value in node.items()}

    return [row(columns, video) for video in range(num_videos)]


def _only(features: Mapping, names: set[str]) -> dict:
    """`features` restricted to `names`, also inside per-model dicts."""
    return {key: _only(value, names) if isinstance(value, Mapping) else value
            for key, value in features.items() if key in names or isinstance(value, Mapping)}


def slice_groups_extractor(eval_config: config_pb2.EvalConfig,
                           top_k: int) -> tfma.extractors.Extractor:
    """Reduces each batch to every model's VideoScores and emits one extract per slice of
    the batch, holding that slice's videos (in place of TFMA's unbatch and slice keys)."""
    # TFMA's evaluators run after the stage of this name.
    return tfma.extractors.Extractor(stage_name=slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME,
                                     ptransform=beam.ParDo(_GroupBySlice(eval_config, top_k)))


class _NameSerializedExamples(beam.DoFn):
    def process(self, batched_extracts: dict) -> Iterator[dict]:
        # TFMA's `util.batch_size` (called on every batch of extracts) makes a closure that
        # refers to itself and to the batch, so each batch's features, raw records, labels and
        # scores (~9 KB a video) wait for the cyclic garbage collector; with TensorFlow loaded
        # a full collection is rare, and the Evaluator grew with the split (11.8 GB at 1.1 M
        # videos). Every stage after this one finishes a batch before the next one enters
        # (one fused stage), so collecting the young generations here frees the last batch.
        gc.collect(generation=1)
        features = {**batched_extracts[constants.FEATURES_KEY],
                    SERIALIZED_EXAMPLES_INPUT: batched_extracts[constants.INPUT_KEY]}
        yield {**batched_extracts, constants.FEATURES_KEY: features}


def serialized_examples_extractor() -> tfma.extractors.Extractor:
    """Adds the serialized examples to the features under the name of the signatures' input.

    TFMA passes serialized examples to a signature positionally when no feature carries the
    input's name; TF's structured binding then fails and formats the whole batch into its
    error message before the flat call succeeds, about a tenth of the Evaluator's time.
    """
    return tfma.extractors.Extractor(stage_name="YouTube8MNameSerializedExamples",
                                     ptransform=beam.ParDo(_NameSerializedExamples()))


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config):
    """The Evaluator's extractors (TFX calls this by name from `module_path`): TFMA's
    defaults with the examples named, and the per-example stages replaced by
    `slice_groups_extractor` when `keeps_batches(eval_config)`."""
    extractors = tfma.default_extractors(eval_shared_model=eval_shared_model,
                                         eval_config=eval_config,
                                         tensor_adapter_config=tensor_adapter_config)
    stages = [extractor.stage_name for extractor in extractors]
    extractors.insert(stages.index(FEATURES_EXTRACTOR_STAGE_NAME) + 1,
                      serialized_examples_extractor())
    if not keeps_batches(eval_config):
        return extractors
    top_k = tfma_metrics.top_k_of(eval_config)
    return [extractor for extractor in extractors
            if extractor.stage_name not in PER_EXAMPLE_STAGES
            ] + [slice_groups_extractor(eval_config, top_k)]
