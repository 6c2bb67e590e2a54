"""Offline evaluation, like the starter code's `eval.py --run_once`: GAP/mAP/Hit@1/PERR of an
exported model on any labelled data, computed by the same code as the Trainer and Evaluator.

    python -m evaluation.offline_eval --model_dir=serving_model \
        --eval_data_pattern='data/sample/video/validate/*.tfrecord'

With `--segment_labels` (segment-rated frame-level shards, the 2019 task): segment MAP@K over
every segment of the videos, as the Evaluator and the starter's segment_eval_inference.py
compute it (evaluation.segments).
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


def evaluate_segments(model_dir: str, eval_data_pattern: str, max_pred: int | None = None,
                      batch_size: int = INFERENCE_BATCH_SIZE,
                      report_path: str | None = None) -> dict[str, float]:
    """Segment MAP@max_pred (default: the model's --segment_max_pred), `segment_classes`,
    `segment_count` and `max_pred`; with `report_path`, the HTML report with its segment
    section."""
    from evaluation.report import score_labelled_files
    from evaluation.segments import rank_segments
    from trainer_module.export import load_training_config

    model_dir = resolve_model_dir(model_dir)
    max_pred = max_pred or load_training_config(model_dir).segment_max_pred
    ranking = rank_segments(model_dir, eval_data_pattern, max_pred, batch_size,
                            with_ratings=True)
    if not ranking.positives.any():
        raise EvaluationError(f"{eval_data_pattern} has no positive segment ratings "
                              "(segment_labels, segment_start_times, segment_scores)")
    metrics = {**ranking.result(), "max_pred": max_pred}
    if report_path:
        report = score_labelled_files(model_dir, expand_pattern(eval_data_pattern), batch_size)
        with open(report_path, "w") as f:
            f.write(report.html("YouTube-8M evaluation report",
                                {"model": model_dir, "data": eval_data_pattern},
                                segment_metrics=metrics))
    return metrics


def format_segment_metrics(metrics: dict[str, float]) -> str:
    return "\n".join([f"{'MAP@' + str(metrics['max_pred']):<12} {metrics['segment_map']:.4f}",
                      f"{'classes':<12} {metrics['segment_classes']}",
                      f"{'segments':<12} {metrics['segment_count']}"])


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
    parser.add_argument("--segment_labels", action="store_true",
                        help="segment MAP@K of segment-rated frame-level shards (2019)")
    parser.add_argument("--segment_max_pred", type=int,
                        help="K of segment MAP@K (default: the model's --segment_max_pred)")
    parser.add_argument("--output_json", help="also write the metrics to this file")
    parser.add_argument("--report", default="evaluation_report.html",
                        help="the HTML evaluation report to write ('' for none)")
    args = parser.parse_args(argv)
    if args.segment_max_pred is not None and args.segment_max_pred <= 0:
        parser.error("--segment_max_pred must be positive")
    try:
        if args.segment_labels:
            metrics = evaluate_segments(args.model_dir, args.eval_data_pattern,
                                        args.segment_max_pred, args.batch_size,
                                        args.report or None)
        else:
            metrics = evaluate_saved_model(args.model_dir, args.eval_data_pattern,
                                           args.batch_size, args.report or None)
    except (EvaluationError, BatchPredictError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_segment_metrics(metrics) if args.segment_labels else format_metrics(metrics))
    if args.report:
        print(f"Report:   {os.path.abspath(args.report)}")
    if args.output_json:
        with open(args.output_json, "w") as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
