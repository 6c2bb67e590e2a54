"""The Evaluator's metric: scores reduced while batched (`custom_extractors`) or per example
(TFMA's default extractors) give the numpy metrics of the same predictions."""

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.utils import util as tfma_util

from components.tfma_metrics import (
    VIDEO_SCORES_KEY,
    _AddVideoScores,
    _VideoScoresPreprocessor,
    _YouTube8MCombiner,
)
from trainer_module.metrics import evaluate

NUM_CLASSES, TOP_K, MODELS = 50, 5, ("candidate", "baseline")


def _eval_config() -> tfma.EvalConfig:
    return tfma.EvalConfig(model_specs=[
        tfma.ModelSpec(name=name, prediction_key="scores", label_key="labels",
                       is_baseline=name == "baseline") for name in MODELS])


def _metrics(examples, model_name: str, eval_config) -> dict:
    key = metric_types.MetricKey(name="_acc", model_name=model_name)
    preprocessor = _VideoScoresPreprocessor(key, eval_config, NUM_CLASSES, TOP_K)
    combiner = _YouTube8MCombiner(key, NUM_CLASSES, TOP_K)
    accumulator = combiner.create_accumulator()
    for example in examples:
        for scores in preprocessor.process(example):
            accumulator = combiner.add_input(accumulator, scores)
    return combiner.extract_output(combiner.merge_accumulators([accumulator]))[key]


@pytest.mark.parametrize("batched", [True, False], ids=["custom_extractors", "per_example"])
def test_both_paths_give_the_numpy_metrics_of_each_model(batched):
    rng = np.random.default_rng(5)
    labels = (rng.random((64, NUM_CLASSES)) < 0.08).astype(np.float32)
    predictions = {name: rng.random((64, NUM_CLASSES)).astype(np.float32) for name in MODELS}
    batched_extracts = {
        tfma.PREDICTIONS_KEY: {name: {"scores": predictions[name]} for name in MODELS},
        tfma.LABELS_KEY: {name: labels for name in MODELS}}
    eval_config = _eval_config()
    if batched:
        batched_extracts = next(_AddVideoScores(eval_config, TOP_K).process(batched_extracts))
    examples = tfma_util.split_extracts(batched_extracts)
    assert (VIDEO_SCORES_KEY in examples[0]) == batched
    for name in MODELS:
        assert _metrics(examples, name, eval_config) == pytest.approx(
            evaluate(predictions[name], labels, top_k=TOP_K))


def test_scores_of_the_wrong_width_are_refused_with_the_shapes():
    eval_config = _eval_config()
    key = metric_types.MetricKey(name="_acc", model_name="candidate")
    preprocessor = _VideoScoresPreprocessor(key, eval_config, NUM_CLASSES, TOP_K)
    example = {tfma.PREDICTIONS_KEY: {"candidate": {"scores": np.zeros(NUM_CLASSES - 1)}},
               tfma.LABELS_KEY: {"candidate": np.zeros(NUM_CLASSES - 1)}}
    with pytest.raises(ValueError, match=r"scores of 50 classes; got labels \(49,\)"):
        next(preprocessor.process(example))
