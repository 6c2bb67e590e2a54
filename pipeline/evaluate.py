"""Offline evaluation, like the starter code's `eval.py --run_once`: GAP/mAP/Hit@1/PERR of an
exported model on any labelled data, computed by the same code as the Trainer and Evaluator.

    python -m pipeline.evaluate --model_dir=serving_model \
        --eval_data_pattern='data/sample/video/validate/*.tfrecord'
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from serving.batch_predict import BatchPredictError, score_shards
from serving.model_dir import ModelNotFoundError, resolve_model_dir


class EvaluationError(Exception):
    """Data or model that cannot be evaluated; the message says which."""


def load_training_config(model_dir: str):
    """The TrainingConfig the exported model was trained with (assets.extra/)."""
    from trainer_module.config import CONFIG_FILENAME, TrainingConfig
    from trainer_module.export import EXTRA_ASSETS_DIR

    path = os.path.join(model_dir, EXTRA_ASSETS_DIR, CONFIG_FILENAME)
    if not os.path.exists(path):
        raise EvaluationError(f"{model_dir} was not exported by this project (no {path})")
    with open(path) as f:
        return TrainingConfig.from_dict(json.load(f))


def evaluate_saved_model(model_dir: str, eval_data_pattern: str,
                         batch_size: int = 256) -> dict[str, float]:
    """The four metrics and `num_examples` of the model in `model_dir` (or its latest version)."""
    import tensorflow as tf

    from trainer_module.features import LABELS_KEY, multi_hot
    from trainer_module.metrics import EvaluationMetrics
    from trainer_module.reader import parse_examples

    files = sorted(glob.glob(eval_data_pattern))
    if not files:
        raise EvaluationError(f"--eval_data_pattern {eval_data_pattern} matches no files")
    model_dir = resolve_model_dir(model_dir)
    config = load_training_config(model_dir)
    spec = config.feature_spec()
    metrics = EvaluationMetrics(config.num_classes, config.top_k)
    for records, _, outputs in score_shards(model_dir, files, batch_size):
        scores = outputs["scores"]
        labels = parse_examples(records, spec, with_labels=True,
                                max_frames=config.max_frames)[LABELS_KEY]
        try:
            metrics.add(scores, multi_hot(labels, config.num_classes).numpy())
        except tf.errors.InvalidArgumentError:
            raise EvaluationError(
                f"{eval_data_pattern}: a label is outside the model's {config.num_classes} "
                "classes (2017 data has 4,716 classes, 2018 data 3,862)") from None
    if not metrics.positives_per_class.any():
        raise EvaluationError(f"{eval_data_pattern} has no labels; evaluation needs labelled "
                              "data (score unlabelled shards with serving.batch_predict)")
    return metrics.result()


def format_metrics(metrics: dict[str, float]) -> str:
    from trainer_module.metrics import METRIC_TITLES

    lines = [f"{title:<9} {metrics[name]:.4f}" for name, title in METRIC_TITLES.items()]
    return "\n".join([*lines, f"{'examples':<9} {metrics['num_examples']}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="serving_model",
                        help="a SavedModel, or a folder of versions (the latest is used)")
    parser.add_argument("--eval_data_pattern", required=True, help="glob of labelled shards")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_json", help="also write the metrics to this file")
    args = parser.parse_args(argv)
    try:
        metrics = evaluate_saved_model(args.model_dir, args.eval_data_pattern, args.batch_size)
    except (EvaluationError, BatchPredictError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_metrics(metrics))
    if args.output_json:
        with open(args.output_json, "w") as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
