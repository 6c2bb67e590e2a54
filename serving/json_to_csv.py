"""Converts JSON predictions to the Kaggle CSV, like the starter code's
convert_prediction_from_json_to_csv.py.

    python -m serving.json_to_csv --json_prediction_files_pattern='predictions/*.json' \
        --csv_output_file=predictions.csv

Each input file is either JSON lines (one prediction per line, as Cloud batch prediction
writes) or one TF Serving REST response (`{"predictions": [...]}`). A prediction holds the
video id (`video_id` or `id`) and its classes as any of:
`class_indexes` + `predictions` (the starter code's), `top_k_class_ids` + `top_k_scores`
(this project's signatures), or `scores` for every class.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

import numpy as np

from contract.saved_model import (
    SCORES_OUTPUT,
    TOP_K,
    TOP_K_CLASS_IDS_OUTPUT,
    TOP_K_SCORES_OUTPUT,
    VIDEO_ID_OUTPUT,
    top_k,
)
from serving.batch_predict import CSV_HEADER, format_csv_row
from shards.files import expand_pattern, written_atomically

# The starter's inference output, then ours.
CLASS_AND_SCORE_KEYS = (("class_indexes", "predictions"),
                        (TOP_K_CLASS_IDS_OUTPUT, TOP_K_SCORES_OUTPUT))


class ConversionError(Exception):
    """A prediction that cannot be converted; the message names the file and line."""


def _predictions_in(path: str) -> Iterator[tuple[int, dict]]:
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None  # not a single document: JSON lines
    if isinstance(document, dict) and isinstance(document.get("predictions"), list):
        yield from ((i + 1, p) for i, p in enumerate(document["predictions"]))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise ConversionError(f"{path}:{number}: not JSON ({error.msg})") from None


def csv_row(prediction: dict, k: int, where: str) -> str:
    """The Kaggle CSV row of one prediction with its `k` best classes."""
    if not isinstance(prediction, dict):
        raise ConversionError(f"{where}: expected a JSON object per prediction")
    video_id = prediction.get(VIDEO_ID_OUTPUT, prediction.get("id"))
    if not video_id:
        raise ConversionError(f"{where}: no '{VIDEO_ID_OUTPUT}' or 'id'")
    for class_key, score_key in CLASS_AND_SCORE_KEYS:
        if class_key in prediction and score_key in prediction:
            class_ids = np.asarray(prediction[class_key], np.int64)
            scores = np.asarray(prediction[score_key], np.float32)
            if class_ids.shape != scores.shape or class_ids.ndim != 1:
                raise ConversionError(f"{where}: '{class_key}' and '{score_key}' must be lists "
                                      "of the same length")
            order, _ = top_k(scores[None, :], k)
            return format_csv_row(video_id, class_ids[order[0]], scores[order[0]])
    if SCORES_OUTPUT in prediction:
        class_ids, scores = top_k(np.asarray([prediction[SCORES_OUTPUT]], np.float32), k)
        return format_csv_row(video_id, class_ids[0], scores[0])
    raise ConversionError(f"{where}: no classes: expected class_indexes+predictions, "
                          f"{TOP_K_CLASS_IDS_OUTPUT}+{TOP_K_SCORES_OUTPUT} or {SCORES_OUTPUT}")


def convert(pattern: str, csv_output_file: str, k: int = TOP_K) -> int:
    """Writes the CSV (only once complete) and returns the number of rows."""
    files = expand_pattern(pattern)
    if not files:
        raise ConversionError(f"--json_prediction_files_pattern {pattern} matches no files")
    count = 0
    with written_atomically(csv_output_file) as partial:
        with open(partial, "w") as out:
            out.write(CSV_HEADER + "\n")
            for path in files:
                for number, prediction in _predictions_in(path):
                    out.write(csv_row(prediction, k, f"{path}:{number}") + "\n")
                    count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json_prediction_files_pattern", required=True)
    parser.add_argument("--csv_output_file", required=True)
    parser.add_argument("--top_k", type=int, default=TOP_K)
    args = parser.parse_args(argv)
    try:
        count = convert(args.json_prediction_files_pattern, args.csv_output_file, args.top_k)
    except (ConversionError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {count} predictions to {args.csv_output_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
