"""The Evaluator's extractors (`custom_extractors`, which TFX calls from `module_path`).

TFMA's default path calls each model's Transform and serving signatures per batch, copies
their dense outputs (every class's score and multi-hot label), unbatches every example,
finds its slices, fans it out and runs each metric's preprocessor and combiner on it. When
every metric is one of `components.tfma_metrics` and every slice a raw-feature or `vertical1`
slice, the metrics only need each slice's `VideoScores`, so one stage does it per batch:

1. each model scores the batch's serialized examples in one call of its `evaluate_examples`
   signature, which parses the labels in the graph and returns only the ranked top classes,
   whether each is a label, and the label ids (`video_scores`);
2. the batch's videos are grouped by slice (`components.tfma_slices`: `vertical1` from the
   label ids, other columns from TFMA's features extractor, which runs only for them) and
   each slice's group leaves as one extract of a few numbers per video.

TFMA's fan-out then sends each group to its one slice, and the combiners add whole groups.
Any other metric or slicing (TFMA metrics, SQL or cross slices, confidence intervals,
default model metrics) gets TFMA's per-example path, which `tfma_metrics` also serves.
"""

from __future__ import annotations

import concurrent.futures
import gc
from collections.abc import Iterator, Mapping

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from apache_beam.transforms.window import GlobalWindows
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import model_util

from components import tfma_metrics
from components.compat import FEATURES_EXTRACTOR_STAGE_NAME
from components.tfma_metrics import VIDEO_SCORES_KEY
from components.tfma_slices import SliceGrouper, slicing_features
from contract.saved_model import (
    EVALUATE_EXAMPLES_SIGNATURE,
    RANKED_CLASS_IDS_OUTPUT,
    RANKED_HITS_OUTPUT,
    RANKED_SCORES_OUTPUT,
    SCORES_OUTPUT,
    SERIALIZED_EXAMPLES_INPUT,
    SERVING_DEFAULT_SIGNATURE,
    TOP_K_CLASS_IDS_OUTPUT,
    TOP_K_SCORES_OUTPUT,
    TRANSFORM_FEATURES_SIGNATURE,
    TRUE_CLASS_IDS_OUTPUT,
)
from trainer_module.features import MULTI_HOT_LABELS_KEY, VERTICALS_KEY
from trainer_module.video_scores import VideoScores


def keeps_batches(eval_config: config_pb2.EvalConfig) -> bool:
    """Whether every metric is ours and every slice a feature slice (of raw features or
    `vertical1`), so that a batch's videos may travel per slice instead of per example."""
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


def video_scores(model, examples: tf.Tensor, top_k: int) -> VideoScores:
    """A loaded SavedModel's VideoScores (`top_k` deep: at most the number of classes) of a
    batch of serialized labelled examples: one call of its `evaluate_examples` signature.
    A model exported before that signature existed (a served baseline), or for a smaller
    top k, is scored by `serving_default` against the labels of its `transform_features`."""
    signatures = model.signatures
    if EVALUATE_EXAMPLES_SIGNATURE in signatures:
        outputs = {name: value.numpy() for name, value in
                   signatures[EVALUATE_EXAMPLES_SIGNATURE](examples=examples).items()}
        if outputs[RANKED_CLASS_IDS_OUTPUT].shape[1] >= top_k:  # else exported for less
            return VideoScores.of_ranked_labels(
                *(outputs[name] for name in (RANKED_CLASS_IDS_OUTPUT, RANKED_SCORES_OUTPUT,
                                             RANKED_HITS_OUTPUT, TRUE_CLASS_IDS_OUTPUT)), top_k)
    if TRANSFORM_FEATURES_SIGNATURE not in signatures:
        raise ValueError(f"the model has neither a {EVALUATE_EXAMPLES_SIGNATURE!r} nor a "
                         f"{TRANSFORM_FEATURES_SIGNATURE!r} signature to read labels with; "
                         f"it has {sorted(signatures)}")
    outputs = signatures[SERVING_DEFAULT_SIGNATURE](examples=examples)
    labels = signatures[TRANSFORM_FEATURES_SIGNATURE](
        examples=examples)[MULTI_HOT_LABELS_KEY].numpy()
    scores, ranked_ids = outputs[SCORES_OUTPUT].numpy(), outputs[TOP_K_CLASS_IDS_OUTPUT]
    if ranked_ids.shape[1] == min(top_k, scores.shape[1]):
        return VideoScores.of_ranked(ranked_ids.numpy(), outputs[TOP_K_SCORES_OUTPUT].numpy(),
                                     scores, labels)
    return VideoScores.of(scores, labels, top_k)


def serialized_examples(batched_extracts: dict) -> np.ndarray:
    """The batch's serialized examples: TFMA's features extractor leaves them under
    INPUT_KEY; before it, they are the Arrow batch's raw-record column."""
    if constants.INPUT_KEY in batched_extracts:
        return np.asarray(batched_extracts[constants.INPUT_KEY]).ravel()
    record_batch = batched_extracts[constants.ARROW_RECORD_BATCH_KEY]
    raw_records = record_batch.column(
        record_batch.schema.get_field_index(constants.ARROW_INPUT_COLUMN))
    return np.asarray(raw_records.flatten(), object)


@beam.typehints.with_input_types(dict)
@beam.typehints.with_output_types(dict)
class _ScoreBySlice(model_util.DoFnWithModels):
    """Each batch is scored in a thread while Beam reads and decodes the next one (TensorFlow
    releases the GIL); its slices leave when the next batch comes, the last at the bundle's
    end."""

    def __init__(self, eval_config: config_pb2.EvalConfig, eval_shared_models: list,
                 top_k: int):
        super().__init__({model.model_name: model.model_loader
                          for model in eval_shared_models})
        self._eval_config = eval_config
        self._top_k = top_k
        self._slices = self._scoring = self._scored = None

    def setup(self):
        super().setup()
        self._slices = SliceGrouper(self._eval_config)
        self._scoring = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def process(self, batched_extracts: dict) -> Iterator[dict]:
        scored, self._scored = self._scored, (
            self._scoring.submit(self._score, batched_extracts), batched_extracts)
        if scored:
            yield from self._by_slice(*scored)

    def finish_bundle(self):
        super().finish_bundle()
        scored, self._scored = self._scored, None
        if scored:
            for extract in self._by_slice(*scored):
                yield GlobalWindows.windowed_value(extract)

    def teardown(self):
        self._scoring.shutdown()

    def _score(self, batched_extracts: dict) -> dict[str, VideoScores]:
        examples = tf.constant(serialized_examples(batched_extracts))
        return {name: video_scores(model, examples, self._top_k)
                for name, model in self._loaded_models.items()}

    def _by_slice(self, scoring: concurrent.futures.Future,
                  batched_extracts: dict) -> Iterator[dict]:
        scores = scoring.result()
        labelled = next(iter(scores.values()))
        for slice_key, videos in self._slices.videos_by_slice(batched_extracts, labelled):
            yield {constants.SLICE_KEY_TYPES_KEY: [slice_key],
                   VIDEO_SCORES_KEY: {name: model_scores.select(videos)
                                      for name, model_scores in scores.items()}}


def score_by_slice_extractor(eval_config: config_pb2.EvalConfig, eval_shared_model,
                             top_k: int) -> tfma.extractors.Extractor:
    """Scores each batch with every model (one signature call each) and emits one extract
    per slice of the batch, holding that slice's VideoScores of every model; in place of
    TFMA's transformed features, labels, predictions, unbatch and slice key stages."""
    models = model_util.verify_and_update_eval_shared_models(eval_shared_model)
    # TFMA's evaluators run after the stage of this name.
    return tfma.extractors.Extractor(
        stage_name=slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME,
        ptransform=beam.ParDo(_ScoreBySlice(eval_config, models, top_k)))


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
    """The Evaluator's extractors (TFX calls this by name from `module_path`). When
    `keeps_batches(eval_config)`: TFMA's features extractor if a slice needs a raw feature,
    then `score_by_slice_extractor`. Otherwise TFMA's defaults, with the examples named."""
    extractors = tfma.default_extractors(eval_shared_model=eval_shared_model,
                                         eval_config=eval_config,
                                         tensor_adapter_config=tensor_adapter_config)
    stages = [extractor.stage_name for extractor in extractors]
    features = stages.index(FEATURES_EXTRACTOR_STAGE_NAME)
    if not keeps_batches(eval_config):
        extractors.insert(features + 1, serialized_examples_extractor())
        return extractors
    return ([extractors[features]] if slicing_features(eval_config) - {VERTICALS_KEY} else []) + [
        score_by_slice_extractor(eval_config, eval_shared_model,
                                 tfma_metrics.top_k_of(eval_config))]
