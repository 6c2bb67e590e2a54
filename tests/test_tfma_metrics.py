"""The Evaluator's metrics: whole slices of a batch (`components.tfma_extractors`) and
single examples (TFMA's default extractors) give the numpy metrics of each model and slice."""

import gc
import weakref

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import util as tfma_util

from components.tfma_extractors import (
    keeps_batches,
    serialized_examples_extractor,
    slice_groups_extractor,
)
from components.tfma_metrics import METRIC_CLASSES, GlobalAveragePrecision, VideoCount
from contract.saved_model import SCORES_OUTPUT, TOP_K_CLASS_IDS_OUTPUT, TOP_K_SCORES_OUTPUT
from pipeline.pipeline import make_eval_config
from pipeline.pipeline_config import PipelineConfig
from trainer_module.metrics import evaluate

NUM_CLASSES, TOP_K, MODELS, GENRES = 50, 5, ("candidate", "baseline"), (b"a", b"b", b"c")
SLICE = "genre"


def _eval_config(metrics=None) -> config_pb2.EvalConfig:
    config = f'{{"num_classes": {NUM_CLASSES}, "top_k": {TOP_K}}}'
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(name=name, prediction_key=SCORES_OUTPUT,
                                    label_key="labels", is_baseline=name == "baseline")
                     for name in MODELS],
        slicing_specs=[config_pb2.SlicingSpec(), config_pb2.SlicingSpec(feature_keys=[SLICE])],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics or [
            config_pb2.MetricConfig(class_name=metric.__name__, module=metric.__module__,
                              config=config) for metric in METRIC_CLASSES])],
        options=config_pb2.Options(include_default_metrics={"value": False}))


def _batch(rng, videos: int, slicing_from: str = "transformed") -> tuple[dict, dict, np.ndarray]:
    """A batched extract as TFMA's extractors leave it before unbatching, its predictions
    and its slicing feature. The slicing feature is dense, one value per label as the
    Transform's verticals, in each model's transformed features (`slicing_from`
    "transformed"), in the raw features ("raw"), or there as a list of per-video arrays
    ("list", which only TFMA's per-video slicing reads)."""
    labels = (rng.random((videos, NUM_CLASSES)) < 0.08).astype(np.float32)
    genres = rng.choice(GENRES, size=(videos, 3))
    predictions, outputs = {}, {}
    for name in MODELS:
        scores = rng.random((videos, NUM_CLASSES)).astype(np.float32)
        ranked = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
        predictions[name] = scores
        outputs[name] = {SCORES_OUTPUT: scores, TOP_K_CLASS_IDS_OUTPUT: ranked,
                         TOP_K_SCORES_OUTPUT: np.take_along_axis(scores, ranked, axis=1)}
    extracts = {constants.PREDICTIONS_KEY: outputs,
                constants.LABELS_KEY: dict.fromkeys(MODELS, labels)}
    if slicing_from == "transformed":
        extracts[constants.TRANSFORMED_FEATURES_KEY] = {name: {SLICE: genres} for name in MODELS}
    else:
        extracts[constants.FEATURES_KEY] = {SLICE: genres if slicing_from == "raw"
                                            else list(genres)}
    return extracts, {**predictions, "labels": labels}, genres


def _expected(batches) -> dict:
    """numpy metrics of every model on every slice: {(model, slice key): metrics}."""
    predictions = {key: np.concatenate([b[1][key] for b in batches]) for key in batches[0][1]}
    genres = np.concatenate([b[2] for b in batches])
    slices = {(): np.ones(len(genres), bool)}
    slices.update({((SLICE, genre.decode()),): (genres == genre).any(axis=1)
                   for genre in GENRES})
    return {(name, key): evaluate(predictions[name][rows], predictions["labels"][rows], TOP_K)
            for name in MODELS for key, rows in slices.items()}


def _combine(extracts_by_slice: dict, eval_config) -> dict:
    """Every model's metrics on every slice, by the metrics' own TFMA computations."""
    result = {}
    for metric_class in (GlobalAveragePrecision, VideoCount):
        metric = metric_class(num_classes=NUM_CLASSES, top_k=TOP_K)
        computations = metric.computations(eval_config=eval_config, model_names=list(MODELS))
        for computation in computations:
            if not hasattr(computation, "combiner"):
                continue
            model = computation.keys[0].model_name
            for slice_key, extracts in extracts_by_slice.items():
                combiner = computation.combiner
                accumulator = combiner.create_accumulator()
                for extract in extracts:
                    for inputs in computation.preprocessors[0].process(extract):
                        accumulator = combiner.add_input(accumulator, inputs)
                output = combiner.extract_output(combiner.merge_accumulators([accumulator]))
                result[(model, slice_key)] = next(iter(output.values()))
    return result


def _assert_metrics_equal_numpy(result: dict, expected: dict) -> None:
    assert set(result) == set(expected)
    for key, metrics in expected.items():
        assert result[key]["example_count"] == metrics["num_examples"]
        assert {name: result[key][name] for name in ("gap", "map", "hit_at_one", "perr")} == (
            pytest.approx({name: metrics[name] for name in ("gap", "map", "hit_at_one", "perr")},
                          abs=1e-12)), key


@pytest.mark.parametrize("slicing_from", ["transformed", "raw", "list"])
def test_slice_groups_give_the_numpy_metrics_of_each_model_and_slice(slicing_from):
    rng = np.random.default_rng(5)
    batches = [_batch(rng, videos, slicing_from) for videos in (40, 1, 23)]
    eval_config = _eval_config()

    def check(groups):
        by_slice = {}
        for group in groups:
            (slice_key,) = group[constants.SLICE_KEY_TYPES_KEY]
            by_slice.setdefault(slice_key, []).append(group)
        assert max(len(extracts) for extracts in by_slice.values()) == len(batches)
        _assert_metrics_equal_numpy(_combine(by_slice, eval_config), _expected(batches))

    with beam.Pipeline() as pipeline:
        groups = (pipeline | beam.Create([batch[0] for batch in batches])
                  | slice_groups_extractor(eval_config, TOP_K).ptransform)
        assert_that(groups, check)


def test_single_examples_give_the_numpy_metrics_of_each_model_and_slice():
    rng = np.random.default_rng(6)
    batches = [_batch(rng, 30), _batch(rng, 7)]
    eval_config = _eval_config()
    by_slice = {}
    for batch in batches:
        for example in tfma_util.split_extracts(batch[0]):
            genres = {genre.decode() for genre in example[constants.TRANSFORMED_FEATURES_KEY][
                "candidate"][SLICE]}
            for slice_key in [(), *(((SLICE, genre),) for genre in genres)]:
                by_slice.setdefault(slice_key, []).append(example)
    _assert_metrics_equal_numpy(_combine(by_slice, eval_config), _expected(batches))


def test_only_our_metrics_and_feature_slices_keep_batches():
    assert keeps_batches(make_eval_config(PipelineConfig()))
    assert keeps_batches(_eval_config())
    with_tfma_metric = _eval_config([config_pb2.MetricConfig(class_name="ExampleCount")])
    assert not keeps_batches(with_tfma_metric)
    with_sql_slice = _eval_config()
    with_sql_slice.slicing_specs.add(slice_keys_sql="SELECT STRUCT(genre) FROM example")
    assert not keeps_batches(with_sql_slice)
    with_defaults = _eval_config()
    with_defaults.options.ClearField("include_default_metrics")
    assert not keeps_batches(with_defaults)


def test_scores_of_the_wrong_width_are_refused_with_the_shapes():
    eval_config = _eval_config()
    computation = GlobalAveragePrecision(num_classes=NUM_CLASSES, top_k=TOP_K).computations(
        eval_config=eval_config, model_names=["candidate"])[0]
    example = {constants.PREDICTIONS_KEY: {"candidate": {"scores": np.zeros(NUM_CLASSES - 1)}},
               constants.LABELS_KEY: {"candidate": np.zeros(NUM_CLASSES - 1)}}
    with pytest.raises(ValueError, match=r"scores of 50 classes; got labels \(49,\)"):
        next(computation.preprocessors[0].process(example))


class _Extracts(dict):
    """A batch of extracts that a weak reference can watch."""


def test_each_batch_frees_what_tfmas_cycles_hold_of_the_last_one():
    def batch():
        return _Extracts({constants.FEATURES_KEY: {"mean_rgb": np.zeros((2, 1024), np.float32)},
                          constants.INPUT_KEY: np.array([b"a", b"b"], object)})

    name_examples = serialized_examples_extractor().ptransform.fn
    gc.disable()  # only the extractor's own collection may free the last batch
    try:
        last = batch()
        assert tfma_util.batch_size(last) == 2
        watched = weakref.ref(last)
        del last
        # The cause: TFMA's batch_size leaves a cycle that holds the batch after it returns.
        # If this fails, TFMA no longer does, and the extractor's collection can go.
        assert watched() is not None
        list(name_examples.process(batch()))
        assert watched() is None
    finally:
        gc.enable()
