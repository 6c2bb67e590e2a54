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

from contract.saved_model import UNRATED
from trainer_module.segments import SEGMENT_MAX_PRED


class _ClassTop:
    """One class's kept segments: scores, ids and ratings, in chunks (at most 1.25 K
    between sorts)."""

    __slots__ = ("scores", "ids", "ratings", "size")

    def __init__(self):
        self.scores, self.ids, self.ratings, self.size = [], [], [], 0

    def add(self, scores: np.ndarray, ids: np.ndarray, ratings: np.ndarray | None) -> None:
        """A chunk; `ids` may be shared with other classes' chunks (not copied), `ratings`
        None when nothing in it was rated."""
        self.scores.append(scores)
        self.ids.append(ids)
        self.ratings.append(ratings)
        self.size += len(scores)

    def ranked(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k largest (score, id) pairs in descending order, and their ratings; the
        class then keeps only those."""
        if not self.scores:
            return np.zeros(0, np.float32), np.zeros(0, "S1"), np.zeros(0, np.float32)
        ratings = np.concatenate([np.full(len(s), UNRATED, np.float32) if r is None else r
                                  for s, r in zip(self.scores, self.ratings, strict=True)])
        scores, ids = np.concatenate(self.scores), np.concatenate(self.ids)
        if len(scores) > k:  # only what ties or beats the k-th score can stay
            inside = scores >= np.partition(scores, len(scores) - k)[len(scores) - k]
            scores, ids, ratings = scores[inside], ids[inside], ratings[inside]
        order = _descending(scores, ids)[:k]
        scores, ids, ratings = scores[order], ids[order], ratings[order]
        self.scores, self.ids, self.ratings, self.size = [scores], [ids], [ratings], len(order)
        return scores, ids, ratings


def _descending(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The order of descending (score, id) pairs: by score, then the runs of equal scores
    (few in real scores, many in rounded ones) reordered by id, all runs in one sort."""
    order = np.argsort(scores)[::-1].copy()
    ranked = scores[order]
    equal = ranked[1:] == ranked[:-1]
    if not equal.any():
        return order
    positions = np.flatnonzero(np.r_[equal, False] | np.r_[False, equal])
    run = np.cumsum(np.r_[True, ~equal])[positions]  # which run of equal scores
    # Ascending by run (their places stay), within a run descending by id (~ on its words).
    within = np.lexsort((*(~key for key in _sort_keys(ids[order[positions]])), run))
    order[positions] = order[positions][within]
    return order


def _sort_keys(ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """`ids` (bytes) as big-endian 8-byte words, last word first: np.lexsort orders these
    numbers as it orders the bytes, several times faster."""
    width = -(-ids.dtype.itemsize // 8) * 8
    words = np.ascontiguousarray(ids.astype(f"S{width}")).view(">u8").reshape(len(ids), -1)
    return tuple(words[:, i] for i in reversed(range(words.shape[1])))


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
        self.num_segments += len(ids)
        scores = np.ascontiguousarray(scores.T)  # [classes, segments]: one row a class
        if ratings is not None:
            ratings = np.ascontiguousarray(np.asarray(ratings, np.float32).T)
            self.positives += (ratings > 0).sum(axis=1)
        # Only what may enter a class's top K: at or above its K-th score so far.
        passing = scores >= self._thresholds[:, None]
        counts = passing.sum(axis=1)
        for column in np.flatnonzero(counts):
            if counts[column] == len(ids):  # all of it (always, until K is reached)
                # Copies: a view would keep the whole batch alive as long as the class.
                self._add_to(int(column), scores[column].copy(), ids,
                             None if ratings is None else ratings[column].copy())
                continue
            keep = passing[column]
            self._add_to(int(column), scores[column][keep], ids[keep],
                         None if ratings is None else ratings[column][keep])

    def _add_to(self, column: int, scores, ids, ratings) -> None:
        top = self._tops[column]
        top.add(scores, ids, ratings)
        # Sorted when first full (to know the K-th score), then whenever K/4 more were
        # added: at most 1.25 K kept, each segment sorted O(1) times on average.
        if top.size >= self.max_pred + max(self.max_pred // 4, 1) or (
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
