"""Offline evaluation, like the starter code's `eval.py --run_once`: GAP/mAP/Hit@1/PERR of an
exported model on any labelled data, computed by the same code as the Trainer and Evaluator.

    python -m evaluation.offline_eval --model_dir=serving_model \
        --eval_data_pattern='data/sample/video/validate/*.tfrecord'
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from serving.batch_predict import INFERENCE_BATCH_SIZE, BatchPredictError
from serving.model_dir import ModelNotFoundError, resolve_model_dir
from shards.files import expand_pattern


class EvaluationError(Exception):
    """Data or model that cannot be evaluated; the message says which."""


def evaluate_saved_model(model_dir: str, eval_data_pattern: str,
                         batch_size: int = INFERENCE_BATCH_SIZE,
                         report_path: str | None = None) -> dict[str, float]:
    """The four metrics, `num_examples` and the `top_k` of GAP@k of the model in `model_dir`
    (or its latest version); with `report_path`, also writes the HTML evaluation report."""
    from evaluation.report import score_labelled_files

    files = expand_pattern(eval_data_pattern)
    if not files:
        raise EvaluationError(f"--eval_data_pattern {eval_data_pattern} matches no files")
    model_dir = resolve_model_dir(model_dir)
    try:
        report = score_labelled_files(model_dir, files, batch_size)
    except ValueError as error:
        raise EvaluationError(f"{eval_data_pattern}: {error}") from None
    if not report.overall.positives_per_class.any():
        raise EvaluationError(f"{eval_data_pattern} has no labels; evaluation needs labelled "
                              "data (score unlabelled shards with serving.batch_predict)")
    if report_path:
        with open(report_path, "w") as f:
            f.write(report.html("YouTube-8M evaluation report",
                                {"model": model_dir, "data": eval_data_pattern}))
    return {**report.metrics(), "top_k": report.overall.top_k}


def format_metrics(metrics: dict[str, float]) -> str:
    from trainer_module.metrics import metric_titles

    titles = metric_titles(metrics["top_k"])
    lines = [f"{title:<9} {metrics[name]:.4f}" for name, title in titles.items()]
    return "\n".join([*lines, f"{'examples':<9} {metrics['num_examples']}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="serving_model",
                        help="a SavedModel, or a folder of versions (the latest is used)")
    parser.add_argument("--eval_data_pattern", required=True, help="glob of labelled shards")
    parser.add_argument("--batch_size", type=int, default=INFERENCE_BATCH_SIZE)
    parser.add_argument("--output_json", help="also write the metrics to this file")
    parser.add_argument("--report", default="evaluation_report.html",
                        help="the HTML evaluation report to write ('' for none)")
    args = parser.parse_args(argv)
    try:
        metrics = evaluate_saved_model(args.model_dir, args.eval_data_pattern, args.batch_size,
                                       args.report or None)
    except (EvaluationError, BatchPredictError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_metrics(metrics))
    if args.report:
        print(f"Report:   {os.path.abspath(args.report)}")
    if args.output_json:
        with open(args.output_json, "w") as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
