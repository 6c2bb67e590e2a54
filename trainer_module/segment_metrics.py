"""Segment MAP@K (the 2019 metric), as the starter code's inference.py and
segment_eval_inference.py compute it, in one streaming implementation.

- Inference keeps, per class, the K segments with the highest scores (a heap of
  `(score, segment id)`): the submission lists them by descending score. Here the K
  largest `(score, segment id)` pairs are kept and listed in descending order of the
  pair, so equal scores keep (and list) the larger segment id first, as the heap keeps it.
- Evaluation filters each class's list to the segments rated for that class; the AP of
  that filtered list is sum(precision at each positive) / the class's positive ratings
  (all of them, also those not in the list); MAP is the mean over the classes with at
  least one positive rating.

`SegmentRanking` keeps K per class in numpy arrays (memory bounded by classes x K, not by
the number of segments seen), merges across workers, and serves the Evaluator, `make
evaluate`, the Trainer and `make infer` (which writes the ranked lists as the submission).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from trainer_module.segments import SEGMENT_MAX_PRED, UNRATED


class _ClassTop:
    """One class's kept segments: scores, ids and ratings, in chunks (fewer than 2K
    between sorts)."""

    __slots__ = ("scores", "ids", "ratings", "size")

    def __init__(self):
        self.scores, self.ids, self.ratings, self.size = [], [], [], 0

    def add(self, scores: np.ndarray, ids: np.ndarray, ratings: np.ndarray) -> None:
        self.scores.append(scores)
        self.ids.append(ids)
        self.ratings.append(ratings)
        self.size += len(scores)

    def ranked(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k largest (score, id) pairs in descending order, and their ratings; the
        class then keeps only those."""
        if not self.scores:
            return np.zeros(0, np.float32), np.zeros(0, "S1"), np.zeros(0, np.float32)
        scores, ids, ratings = (np.concatenate(self.scores), np.concatenate(self.ids),
                                np.concatenate(self.ratings))
        order = np.lexsort((ids, scores))[::-1][:k]
        scores, ids, ratings = scores[order], ids[order], ratings[order]
        self.scores, self.ids, self.ratings, self.size = [scores], [ids], [ratings], len(order)
        return scores, ids, ratings


class SegmentRanking:
    """The top `max_pred` segments of each class in `class_ids`, with their ratings, and
    every class's number of positive ratings."""

    def __init__(self, class_ids: Sequence[int], max_pred: int = SEGMENT_MAX_PRED):
        self.class_ids = np.asarray(class_ids, np.int64)
        self.max_pred = max_pred
        self._tops = [_ClassTop() for _ in self.class_ids]
        self._thresholds = np.full(len(self.class_ids), -np.inf, np.float32)
        self.positives = np.zeros(len(self.class_ids), np.int64)
        self.num_segments = 0

    def add(self, segment_ids: Sequence, scores: np.ndarray,
            ratings: np.ndarray | None = None) -> None:
        """Segments [n] with their scores [n, classes] (columns in `class_ids` order) and
        ratings [n, classes] (UNRATED where nobody rated; None: none rated)."""
        ids = np.asarray(segment_ids, dtype=bytes)
        scores = np.asarray(scores, np.float32)
        if scores.shape != (len(ids), len(self.class_ids)):
            raise ValueError(f"scores {scores.shape} must be [{len(ids)} segments, "
                             f"{len(self.class_ids)} classes]")
        if np.isnan(scores).any():
            raise ValueError("segment scores hold NaN")
        if ratings is not None and np.shape(ratings) != scores.shape:
            raise ValueError(f"ratings {np.shape(ratings)} must be shaped as the scores "
                             f"{scores.shape}")
        if ratings is None:
            ratings = np.full(scores.shape, UNRATED, np.float32)
        ratings = np.asarray(ratings, np.float32)
        self.positives += (ratings > 0).sum(axis=0)
        self.num_segments += len(ids)
        # Only what may enter a class's top K: at or above its K-th score so far.
        columns, rows = np.nonzero((scores >= self._thresholds[None, :]).T)
        if not len(columns):
            return
        starts = np.flatnonzero(np.r_[True, np.diff(columns) != 0])
        for column_rows, column in zip(np.split(rows, starts[1:]), columns[starts],
                                       strict=True):
            self._add_to(int(column), scores[column_rows, column], ids[column_rows],
                         ratings[column_rows, column])

    def _add_to(self, column: int, scores, ids, ratings) -> None:
        top = self._tops[column]
        top.add(scores, ids, ratings)
        # Sorted when first full (to know the K-th score) and then at 2K: amortised O(1).
        if top.size >= 2 * self.max_pred or (
                top.size >= self.max_pred and self._thresholds[column] == -np.inf):
            kept = top.ranked(self.max_pred)[0]
            self._thresholds[column] = kept[-1]

    def merge(self, other: SegmentRanking) -> None:
        """Adds what `other` (same classes and K) kept and counted."""
        if not np.array_equal(other.class_ids, self.class_ids) or other.max_pred != self.max_pred:
            raise ValueError("only rankings of the same classes and max_pred merge")
        self.positives += other.positives
        self.num_segments += other.num_segments
        for column, top in enumerate(other._tops):
            for scores, ids, ratings in zip(top.scores, top.ids, top.ratings, strict=True):
                self._add_to(column, scores, ids, ratings)

    def ranked(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(class id, segment ids, scores, ratings) of each class with any segment, the
        segments in submission order."""
        for class_id, top in zip(self.class_ids, self._tops, strict=True):
            scores, ids, ratings = top.ranked(self.max_pred)
            if len(ids):
                yield int(class_id), ids, scores, ratings

    def result(self) -> dict[str, float]:
        """`segment_map` (MAP@max_pred), and how many classes and segments it covers."""
        average_precisions = []
        ranked = {class_id: ratings for class_id, _, _, ratings in self.ranked()}
        for class_id, positives in zip(self.class_ids, self.positives, strict=True):
            if positives:
                average_precisions.append(average_precision(
                    ranked.get(int(class_id), np.zeros(0, np.float32)), int(positives)))
        return {"segment_map": float(np.mean(average_precisions)) if average_precisions
                else float("nan"),
                "segment_classes": len(average_precisions),
                "segment_count": self.num_segments}


def average_precision(ratings: np.ndarray, positives: int) -> float:
    """AP of a ranked list over its rated entries (UNRATED ones dropped), normalised by
    `positives`, the class's positive ratings."""
    rated = ratings[ratings >= 0]
    hits = rated > 0
    if not positives or not hits.any():
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(rated) + 1)
    return float(precision[hits].sum() / positives)
