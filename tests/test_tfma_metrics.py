"""The Evaluator's metrics: whole slices of a batch (`components.tfma_extractors`) and
single examples (TFMA's default extractors) give the numpy metrics of each model and slice."""

import dataclasses
import gc
import os
import pickle
import weakref

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from apache_beam.testing.util import assert_that, equal_to
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import util as tfma_util
from tfx.components.util import examples_utils, tfxio_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from components.pool_files import PoolOnLocalDisk
from components.schemas import write_labels_schema
from components.tfma_extractors import (
    keeps_batches,
    score_by_slice_extractor,
    serialized_examples_extractor,
)
from components.tfma_metrics import METRIC_CLASSES, GlobalAveragePrecision, VideoCount
from components.tfma_slices import SliceGrouper
from contract.saved_model import (
    EVALUATE_EXAMPLES_SIGNATURE,
    SCORES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    TOP_K_CLASS_IDS_OUTPUT,
    TOP_K_SCORES_OUTPUT,
    TRANSFORM_FEATURES_SIGNATURE,
)
from pipeline.pipeline import evaluator_decodes_labels_only, make_eval_config
from pipeline.pipeline_config import PROJECT_ROOT, PipelineConfig
from trainer_module.export import ranked_against_labels
from trainer_module.features import (
    LABELS_KEY,
    MULTI_HOT_LABELS_KEY,
    NUM_CLASSES_2018,
    VERTICALS_KEY,
)
from trainer_module.metrics import EvaluationMetrics, evaluate
from trainer_module.transform import label_verticals
from trainer_module.video_scores import VideoScores

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


class _Model:
    """A loaded SavedModel's signatures over fixed scores and labels: each serialized example
    is its row's index. With `evaluate_examples` (the export's own ranking), or only the
    signatures of a model exported before it."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray, evaluates: bool):
        self.scores, self.labels = scores, labels
        self.signatures = {SERVING_DEFAULT_SIGNATURE: self.serve,
                           TRANSFORM_FEATURES_SIGNATURE: self.transform}
        if evaluates:
            self.signatures[EVALUATE_EXAMPLES_SIGNATURE] = self.evaluate

    def rows(self, examples):
        return [int(example) for example in examples.numpy()]

    def serve(self, examples):
        scores = tf.constant(self.scores[self.rows(examples)])
        top = tf.math.top_k(scores, k=TOP_K)
        return {SCORES_OUTPUT: scores, TOP_K_CLASS_IDS_OUTPUT: top.indices,
                TOP_K_SCORES_OUTPUT: top.values}

    def transform(self, examples):
        return {MULTI_HOT_LABELS_KEY: tf.constant(self.labels[self.rows(examples)])}

    def evaluate(self, examples):
        rows = self.rows(examples)
        return ranked_against_labels(tf.constant(self.scores[rows]),
                                     tf.constant(self.labels[rows]), TOP_K)


def _batches(rng, sizes, slicing_from: str = "raw") -> tuple[list[dict], dict, np.ndarray]:
    """Batched extracts as TFMA's features extractor leaves them (the serialized examples
    are row indices), every model's loaded SavedModel, and the slicing feature: dense, one
    value per label as the Transform's verticals, in the raw features ("raw"), or there as
    a list of per-video arrays ("list", which only TFMA's per-video slicing reads)."""
    videos = sum(sizes)
    labels = (rng.random((videos, NUM_CLASSES)) < 0.08).astype(np.float32)
    genres = rng.choice(GENRES, size=(videos, 3))
    # The baseline scores some videos with ties, which both rankings break by class id.
    scores = {name: np.round(rng.random((videos, NUM_CLASSES)), 2 if name == "baseline" else 6
                             ).astype(np.float32) for name in MODELS}
    models = {name: _Model(scores[name], labels, evaluates=name == "candidate")
              for name in MODELS}
    extracts, start = [], 0
    for size in sizes:
        rows = slice(start, start + size)
        extracts.append({constants.INPUT_KEY: np.array(
                             [str(row).encode() for row in range(start, start + size)], object),
                         constants.FEATURES_KEY: {SLICE: genres[rows] if slicing_from == "raw"
                                                  else list(genres[rows])}})
        start += size
    return extracts, models, genres


def _expected(models: dict, genres: np.ndarray) -> dict:
    """numpy metrics of every model on every slice: {(model, slice key): metrics}."""
    slices = {(): np.ones(len(genres), bool)}
    slices.update({((SLICE, genre.decode()),): (genres == genre).any(axis=1)
                   for genre in GENRES})
    return {(name, key): evaluate(model.scores[rows], model.labels[rows], TOP_K)
            for name, model in models.items() for key, rows in slices.items()}


def _shared_models(models: dict) -> list[tfma.types.EvalSharedModel]:
    return [tfma.types.EvalSharedModel(
        model_path="", add_metrics_callbacks=[], include_default_metrics=False,
        example_weight_key=None, additional_fetches=None,
        model_loader=tfma.types.ModelLoader(construct_fn=lambda model=model: model),
        model_name=name, model_type=tfma.constants.TF_GENERIC, rubber_stamp=False,
        is_baseline=name == "baseline", resource_hints=None, backend_config=None)
        for name, model in models.items()]


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


@pytest.mark.parametrize("slicing_from", ["raw", "list"])
def test_each_models_signature_calls_give_the_numpy_metrics_of_each_slice(slicing_from):
    """The candidate is scored by `evaluate_examples`, the baseline (exported before it) by
    `serving_default` and `transform_features`; both give numpy's metrics on every slice."""
    rng = np.random.default_rng(5)
    extracts, models, genres = _batches(rng, (40, 1, 23), slicing_from)
    eval_config = _eval_config()

    def check(groups):
        by_slice = {}
        for group in groups:
            (slice_key,) = group[constants.SLICE_KEY_TYPES_KEY]
            by_slice.setdefault(slice_key, []).append(group)
        assert max(len(extracts) for extracts in by_slice.values()) == len(extracts)
        _assert_metrics_equal_numpy(_combine(by_slice, eval_config), _expected(models, genres))

    with beam.Pipeline() as pipeline:
        groups = (pipeline | beam.Create(extracts)
                  | score_by_slice_extractor(eval_config, _shared_models(models),
                                             TOP_K).ptransform)
        assert_that(groups, check)


def test_video_scores_of_the_evaluation_signature_equal_those_of_all_scores():
    rng = np.random.default_rng(7)
    scores = np.round(rng.random((64, NUM_CLASSES)), 2).astype(np.float32)
    labels = (rng.random((64, NUM_CLASSES)) < 0.2).astype(np.float32)  # many above TOP_K
    outputs = {name: value.numpy() for name, value in
               ranked_against_labels(tf.constant(scores), tf.constant(labels), TOP_K).items()}
    ranked = VideoScores.of_ranked_labels(*outputs.values(), TOP_K)
    expected = VideoScores.of(scores, labels, TOP_K)
    for field in dataclasses.fields(VideoScores):
        np.testing.assert_array_equal(getattr(ranked, field.name),
                                      getattr(expected, field.name), err_msg=field.name)


def test_verticals_from_label_ids_are_the_transforms():
    rng = np.random.default_rng(8)
    labels = (rng.random((32, NUM_CLASSES_2018)) < 0.001).astype(np.float32)
    labels[:3] = 0  # videos without labels
    config = make_eval_config(PipelineConfig())
    grouper = SliceGrouper(config)
    masks = dict(grouper.videos_by_slice({}, VideoScores.of(labels, labels, TOP_K)))
    verticals = label_verticals(tf.constant(labels)).numpy()
    expected = {((VERTICALS_KEY, name.decode()),): (verticals == name).any(axis=1)
                for name in np.unique(verticals)}
    assert set(masks) == {(), *expected}
    for key, videos in expected.items():
        np.testing.assert_array_equal(masks[key], videos, err_msg=str(key))


def test_single_examples_give_the_numpy_metrics_of_each_model_and_slice():
    """TFMA's own per-example path (any other metric or slicing) with the same metrics."""
    rng = np.random.default_rng(6)
    _, models, genres = _batches(rng, (37,))
    batched = {constants.PREDICTIONS_KEY: {name: {SCORES_OUTPUT: model.scores}
                                           for name, model in models.items()},
               constants.LABELS_KEY: {name: model.labels for name, model in models.items()}}
    by_slice = {}
    for example, video_genres in zip(tfma_util.split_extracts(batched), genres, strict=True):
        for slice_key in [(), *(((SLICE, genre.decode()),) for genre in set(video_genres))]:
            by_slice.setdefault(slice_key, []).append(example)
    _assert_metrics_equal_numpy(_combine(by_slice, _eval_config()), _expected(models, genres))


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


def test_a_pool_on_local_disk_holds_a_chunk_pickles_as_paths_and_comes_back_whole(monkeypatch):
    monkeypatch.setattr(PoolOnLocalDisk, "CHUNK_ENTRIES", 2_000)
    rng = np.random.default_rng(9)
    on_disk, in_memory = PoolOnLocalDisk(NUM_CLASSES, TOP_K), EvaluationMetrics(NUM_CLASSES, TOP_K)
    other = PoolOnLocalDisk(NUM_CLASSES, TOP_K)
    for accumulator in (on_disk, on_disk, other):
        scores = rng.random((500, NUM_CLASSES)).astype(np.float32)
        labels = (rng.random((500, NUM_CLASSES)) < 0.08).astype(np.float32)
        accumulator.add(scores, labels)
        in_memory.add(scores, labels)
        # Each add of 2,500 entries goes to a file: never more than a chunk in memory.
        assert sum(map(len, accumulator._scores)) < PoolOnLocalDisk.CHUNK_ENTRIES  # noqa: SLF001
    pickled = pickle.dumps(on_disk)
    assert len(pickled) * 10 < len(pickle.dumps(in_memory))
    restored = pickle.loads(pickled)
    restored.merge(pickle.loads(pickle.dumps(other)))
    assert pickle.loads(pickle.dumps(restored)).result() == in_memory.result()


@pytest.mark.parametrize("level", ["video", "frame"])
def test_the_evaluator_decodes_only_the_labels_unless_a_slice_needs_a_raw_feature(
        tmp_path, level):
    """The Evaluator's own TFXIO (TFX's factory, as its executor calls it) with the labels'
    schema decodes the labels alone beside the serialized record, at either level."""
    config = make_eval_config(PipelineConfig())
    assert evaluator_decodes_labels_only(config)
    write_labels_schema(str(tmp_path))
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(str(tmp_path)))
    examples = standard_artifacts.Examples()
    examples_utils.set_payload_format(examples, (
        example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE if level == "video"
        else example_gen_pb2.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE))
    tfxio = tfxio_utils.get_tfxio_factory_from_artifact(
        examples=[examples], telemetry_descriptors=["test"], schema=schema,
        raw_record_column_name=constants.ARROW_INPUT_COLUMN)(
        os.path.join(PROJECT_ROOT, "data", "sample", level, "validate", "*.tfrecord"))
    with beam.Pipeline() as pipeline:
        columns = (pipeline | tfxio.BeamSource()
                   | beam.Map(lambda batch: tuple(batch.schema.names)) | beam.Distinct())
        assert_that(columns, equal_to([(LABELS_KEY, constants.ARROW_INPUT_COLUMN)]))

    config.slicing_specs.append(config_pb2.SlicingSpec(feature_keys=["id"]))
    assert not evaluator_decodes_labels_only(config)
