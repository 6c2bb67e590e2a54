"""YouTube-8M metrics exactly as the starter code defines them, in one numpy implementation.

- GAP@k: every video's top-k predictions are pooled; AP over the pool sorted by score,
  normalised by the total number of positive labels (not only those in the pool).
- mAP: per class, AP over that class's entries in the same top-k pool, normalised by the
  class's positives, averaged over *all* classes (classes with no positives count as 0).
- Hit@1: fraction of videos whose top-scoring class is a true label.
- PERR: per video with n labels, precision of its top-n predictions (positive scores only).

`EvaluationMetrics` accumulates batches and merges across workers, so the Trainer, the
TFMA metric in `components/` and the CLIs all compute the same numbers.
"""

from __future__ import annotations

import numpy as np

from contract.saved_model import TOP_K
from trainer_module.video_scores import VideoScores

METRIC_NAMES = ("gap", "map", "hit_at_one", "perr")


def metric_titles(top_k: int = TOP_K) -> dict[str, str]:
    """Each metric's name as people read it, in METRIC_NAMES order; GAP's carries its k."""
    return dict(zip(METRIC_NAMES, (f"GAP@{top_k}", "mAP", "Hit@1", "PERR"), strict=True))


class EvaluationMetrics:
    """Streaming accumulator of the top-k pool and per-video scores; mergeable."""

    def __init__(self, num_classes: int, top_k: int = TOP_K):
        if top_k <= 0:
            raise ValueError("top_k must be a positive integer")
        self.num_classes = num_classes
        self.top_k = min(top_k, num_classes)
        self.num_examples = 0
        self.sum_hit_at_one = 0.0
        self.sum_perr = 0.0
        self._positives = np.zeros(num_classes, np.int64)
        self._class_ids: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._hits: list[np.ndarray] = []
        self._label_ids: list[np.ndarray] = []  # counted by compact()

    def add(self, predictions, labels) -> None:
        """Adds a batch: `predictions` scores and `labels` multi-hot, both [batch, num_classes]."""
        self.add_scores(self.scores_of(predictions, labels))

    def scores_of(self, predictions, labels) -> VideoScores:
        """A batch reduced for this accumulator (and any other with its classes and top_k)."""
        if np.shape(predictions)[-1] != self.num_classes:
            raise ValueError(
                f"predictions {np.shape(predictions)} and labels {np.shape(labels)} must both "
                f"be [batch, {self.num_classes}]")
        return VideoScores.of(predictions, labels, self.top_k)

    def add_scores(self, scores: VideoScores) -> None:
        """Adds videos already reduced by `VideoScores.of` with this accumulator's top_k."""
        if scores.top_class_ids.shape[1:] != (self.top_k,):
            raise ValueError(f"scores of the top {scores.top_class_ids.shape[1:]} classes "
                             f"added to a top-{self.top_k} accumulator")
        self._class_ids.append(scores.top_class_ids.ravel().astype(self._class_id_dtype))
        self._scores.append(scores.top_scores.ravel())
        self._hits.append(scores.top_hits.ravel())
        self._label_ids.append(scores.label_ids)
        self.num_examples += len(scores.perr)
        self.sum_hit_at_one += float(scores.hit_at_one.sum())
        self.sum_perr += float(scores.perr.sum())

    def merge(self, other: EvaluationMetrics) -> None:
        """Adds everything `other` accumulated into this accumulator."""
        self.num_examples += other.num_examples
        self.sum_hit_at_one += other.sum_hit_at_one
        self.sum_perr += other.sum_perr
        self._positives += other._positives
        self._label_ids.extend(other._label_ids)
        self._class_ids.extend(other._class_ids)
        self._scores.extend(other._scores)
        self._hits.extend(other._hits)

    def compact(self) -> None:
        """Concatenates accumulated batches so the state pickles as a few arrays."""
        if self._label_ids:
            self._positives += np.bincount(np.concatenate(self._label_ids),
                                           minlength=self.num_classes)
            self._label_ids = []
        if len(self._scores) > 1:
            self._class_ids = [np.concatenate(self._class_ids)]
            self._scores = [np.concatenate(self._scores)]
            self._hits = [np.concatenate(self._hits)]

    @property
    def _class_id_dtype(self) -> type:
        # The pool is most of the Evaluator's memory at full size: class ids in two bytes when
        # they fit, and whether each entry is a true label packed to a bit when pickled.
        return np.uint16 if self.num_classes <= 1 << 16 else np.int32

    def __getstate__(self) -> dict:
        self.compact()
        state = self.__dict__.copy()
        state["_hits"] = [np.packbits(hits) for hits in self._hits]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._hits = [np.unpackbits(packed, count=len(scores)).view(bool)
                      for packed, scores in zip(self._hits, self._scores, strict=True)]

    @property
    def positives_per_class(self) -> np.ndarray:
        """How many videos carry each class ([num_classes])."""
        self.compact()
        return self._positives

    def pool(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pooled top-k entries as (class_ids, scores, hits)."""
        self.compact()
        if not self._scores:
            return np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, bool)
        return self._class_ids[0], self._scores[0], self._hits[0]

    def descending_scores(self) -> np.ndarray:
        """The pool's order by descending score, equal scores in pool order."""
        return descending_order(self.pool()[1])

    def per_class_average_precision(self, descending: np.ndarray | None = None) -> np.ndarray:
        """AP of every class over its entries in the top-k pool ([num_classes]);
        `descending`: the pool's `descending_scores()`, when known."""
        class_ids, _, hits = self.pool()
        if descending is None:
            descending = self.descending_scores()
        # By class, then by descending score: a stable sort by class of the score order.
        order = descending[np.argsort(class_ids[descending], kind="stable")]
        class_ids = class_ids[order]
        hit_positions = np.flatnonzero(hits[order])
        del order
        # Only the true labels add to AP: each one's precision is the true labels of its class
        # up to it over its rank in its class (both arrays are sorted by class).
        hit_class_ids = class_ids[hit_positions]
        rank = hit_positions - np.searchsorted(class_ids, hit_class_ids, side="left") + 1
        hits_so_far = (np.arange(len(hit_class_ids))
                       - np.searchsorted(hit_class_ids, hit_class_ids, side="left") + 1)
        ap_sums = np.bincount(hit_class_ids, weights=hits_so_far / rank,
                              minlength=self.num_classes)
        with np.errstate(divide="ignore", invalid="ignore"):
            aps = np.where(self.positives_per_class > 0,
                           ap_sums / self.positives_per_class, 0.0)
        return aps

    def mean_average_precision(self, descending: np.ndarray | None = None) -> float:
        """The mean of the per-class APs over the classes with a positive label in the data,
        as the starter's MeanAveragePrecisionCalculator (filter_empty_classes) computes it."""
        present = self.positives_per_class > 0
        return float(self.per_class_average_precision(descending)[present].mean()) \
            if present.any() else 0.0

    def global_average_precision(self, descending: np.ndarray | None = None) -> float:
        _, scores, hits = self.pool()
        return average_precision(scores, hits, int(self.positives_per_class.sum()), descending)

    def result(self, descending: np.ndarray | None = None) -> dict[str, float]:
        """The four metrics plus the number of examples; `descending`: the pool's
        `descending_scores()`, when known (else sorted here, once for GAP and mAP)."""
        if self.num_examples == 0:
            raise ValueError("no examples were accumulated")
        if descending is None:
            descending = self.descending_scores()
        return {
            "gap": self.global_average_precision(descending),
            "map": self.mean_average_precision(descending),
            "hit_at_one": self.sum_hit_at_one / self.num_examples,
            "perr": self.sum_perr / self.num_examples,
            "num_examples": self.num_examples,
        }


def descending_order(scores: np.ndarray) -> np.ndarray:
    """The indices of `scores` by descending score, equal scores in index order and NaNs
    last: `np.argsort(-scores, kind="stable")`, as one sort of 64-bit keys (each score's
    bits, made to order as the scores do, above its index). numpy sorts those with SIMD;
    its stable argsort of floats is a timsort, several times slower."""
    scores = np.asarray(scores, np.float32).ravel()
    if len(scores) >= 1 << 32:  # the index must fit below the score's bits
        return np.argsort(-scores, kind="stable")
    bits = (scores + np.float32(0)).view(np.int32)  # + 0: -0.0 as 0.0, as the floats tie
    order = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # ascending as the floats: negatives flipped
    np.invert(order, out=order)  # descending
    nans = np.isnan(scores)
    if nans.any():
        order[nans] = np.iinfo(np.int32).max
    keys = order.astype(np.int64)
    keys <<= 32  # in place from here: a full split's pool is 22 M entries
    keys |= np.arange(len(scores), dtype=np.int64)
    keys.sort()
    keys &= 0xFFFFFFFF
    return keys


def average_precision(scores: np.ndarray, hits: np.ndarray, num_positives: int,
                      descending: np.ndarray | None = None) -> float:
    """Non-interpolated AP of a ranked list, normalised by `num_positives` (0 if none);
    `descending`: the order of `scores` by descending score (stable), when known."""
    if num_positives == 0 or len(scores) == 0:
        return 0.0
    order = descending_order(scores) if descending is None else descending
    hit_ranks = np.flatnonzero(np.asarray(hits, bool)[order]) + 1
    del order
    hits_so_far = np.arange(1, len(hit_ranks) + 1)
    return float(np.sum(hits_so_far / hit_ranks) / num_positives)


def evaluate(predictions, labels, top_k: int = TOP_K) -> dict[str, float]:
    """The four metrics of one [batch, num_classes] prediction matrix."""
    metrics = EvaluationMetrics(np.shape(predictions)[-1], top_k)
    metrics.add(predictions, labels)
    return metrics.result()
