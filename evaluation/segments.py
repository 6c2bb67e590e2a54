"""The 2019 segment task with an exported model, like the starter code's
`inference.py --segment_labels` and `segment_eval_inference.py`: every 5-second segment of
every video scored by the model's `serving_segments` signature, the top `--segment_max_pred`
segments of each of the 1,000 rated classes kept (streaming: memory bounded by classes x K,
not by the number of segments), then written as the Kaggle submission `Class,Segments` or,
against the ratings of labelled shards, reduced to segment MAP@K (`make evaluate
SEGMENTS=1`, the same numbers as the Evaluator's).

    python -m evaluation.segments --model_dir=serving_model_segments \
        --input_data_pattern='data/test/*.tfrecord' --output_file=segment_predictions.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np

from contract.saved_model import (
    SEGMENT_IDS_OUTPUT,
    SEGMENT_RATINGS_OUTPUT,
    SEGMENT_RATINGS_SIGNATURE,
    SEGMENT_SCORES_OUTPUT,
    SEGMENT_START_TIMES_OUTPUT,
    SERVING_SEGMENTS_SIGNATURE,
)
from serving.batch_predict import INFERENCE_BATCH_SIZE, BatchPredictError, score_shards
from serving.model_dir import ModelNotFoundError, resolve_model_dir
from shards.files import expand_pattern, written_atomically
from trainer_module.segment_metrics import SegmentRanking
from trainer_module.segments import SEGMENT_MAX_PRED, segment_class_ids

SUBMISSION_HEADER = "Class,Segments"


def score_segment_shards(model_dir: str, files: list[str], batch_size: int,
                         with_ratings: bool = False
                         ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(segment ids [n], scores [n, rated classes], ratings [n, rated classes] or None) of
    every batch of videos in `files`, through the model's segment signatures."""
    signatures = ((SERVING_SEGMENTS_SIGNATURE, SEGMENT_RATINGS_SIGNATURE) if with_ratings
                  else (SERVING_SEGMENTS_SIGNATURE,))
    for _, _, outputs in score_shards(model_dir, files, batch_size, signatures):
        present = outputs[SEGMENT_START_TIMES_OUTPUT] >= 0
        ratings = outputs[SEGMENT_RATINGS_OUTPUT][present] if with_ratings else None
        yield (outputs[SEGMENT_IDS_OUTPUT][present], outputs[SEGMENT_SCORES_OUTPUT][present],
               ratings)


def rank_segments(model_dir: str, input_data_pattern: str, max_pred: int = SEGMENT_MAX_PRED,
                  batch_size: int = INFERENCE_BATCH_SIZE, with_ratings: bool = False,
                  progress: bool = True) -> SegmentRanking:
    """Every segment of the shards scored, the top `max_pred` of each rated class kept."""
    from tqdm import tqdm

    files = expand_pattern(input_data_pattern)
    if not files:
        raise BatchPredictError(f"--input_data_pattern {input_data_pattern} matches no files")
    ranking = SegmentRanking(segment_class_ids(), max_pred)
    with tqdm(unit=" segments", desc="scoring segments", disable=not progress,
              file=sys.stderr) as bar:
        for ids, scores, ratings in score_segment_shards(resolve_model_dir(model_dir), files,
                                                         batch_size, with_ratings):
            ranking.add(ids, scores, ratings)
            bar.update(len(ids))
    return ranking


def write_submission(ranking: SegmentRanking, output_file: str) -> int:
    """Writes `Class,Segments` (one row per class, segment ids best first) atomically;
    returns the number of rows."""
    rows = 0
    with written_atomically(output_file) as partial, open(partial, "w") as out:
        out.write(SUBMISSION_HEADER + "\n")
        for class_id, ids, _, _ in ranking.ranked():
            out.write(f"{class_id},{b' '.join(ids.tolist()).decode()}\n")
            rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="serving_model_segments",
                        help="a SavedModel, or a folder of versions (the latest is used)")
    parser.add_argument("--input_data_pattern", required=True, help="frame-level shards (glob)")
    parser.add_argument("--output_file", required=True, help="the submission CSV to write")
    parser.add_argument("--segment_max_pred", type=int, default=SEGMENT_MAX_PRED,
                        help="segments kept per class")
    parser.add_argument("--batch_size", type=int, default=INFERENCE_BATCH_SIZE,
                        help="videos scored at once")
    args = parser.parse_args(argv)
    if args.segment_max_pred <= 0 or args.batch_size <= 0:
        parser.error("--segment_max_pred and --batch_size must be positive")
    try:
        ranking = rank_segments(args.model_dir, args.input_data_pattern, args.segment_max_pred,
                                args.batch_size)
        rows = write_submission(ranking, args.output_file)
    except (BatchPredictError, ModelNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {rows} classes to {args.output_file}: each with its best "
          f"{args.segment_max_pred:,} (at most) of the {ranking.num_segments:,} segments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
