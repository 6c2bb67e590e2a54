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

import dataclasses

import numpy as np

from contract.saved_model import TOP_K
from contract.saved_model import top_k as top_k_classes

METRIC_NAMES = ("gap", "map", "hit_at_one", "perr")


def metric_titles(top_k: int = TOP_K) -> dict[str, str]:
    """Each metric's name as people read it, in METRIC_NAMES order; GAP's carries its k."""
    return dict(zip(METRIC_NAMES, (f"GAP@{top_k}", "mAP", "Hit@1", "PERR"), strict=True))


@dataclasses.dataclass(frozen=True)
class VideoScores:
    """What the metrics need of a batch of videos, a few numbers each instead of
    num_classes scores: computed once per video and added to any number of accumulators
    (the Evaluator's slices, the report's verticals)."""

    top_class_ids: np.ndarray  # [videos, top_k] int32, the top-k classes
    top_scores: np.ndarray  # [videos, top_k] float32, their scores
    top_hits: np.ndarray  # [videos, top_k] bool, whether each is a true label
    hit_at_one: np.ndarray  # [videos] bool
    perr: np.ndarray  # [videos] float64
    num_labels: np.ndarray  # [videos] int, how many true labels each video has
    label_ids: np.ndarray  # [sum of num_labels] int32, every true label, video by video

    @classmethod
    def of(cls, predictions, labels, top_k: int) -> VideoScores:
        """The scores of `predictions` against multi-hot `labels`, both [videos, classes]."""
        predictions = np.asarray(predictions, np.float32)
        labels = np.asarray(labels) > 0
        if predictions.shape != labels.shape or predictions.ndim != 2:
            raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} must "
                             f"both be [batch, num_classes]")
        _refuse_nan(predictions)
        top_k = min(top_k, predictions.shape[1])
        rows = np.arange(len(predictions))[:, None]
        top, _ = top_k_classes(predictions, top_k)
        num_labels = labels.sum(axis=1)
        return cls(
            top_class_ids=top.astype(np.int32), top_scores=predictions[rows, top],
            top_hits=labels[rows, top],
            hit_at_one=labels[rows[:, 0], predictions.argmax(axis=1)],
            perr=_precision_at_equal_recall(predictions, labels, num_labels),
            num_labels=num_labels, label_ids=np.nonzero(labels)[1].astype(np.int32))

    @classmethod
    def of_ranked(cls, top_class_ids, top_scores, predictions, labels) -> VideoScores:
        """Like `of`, from top-k classes already ranked (as `tf.math.top_k` ranks them:
        descending, equal scores lower class first), so nothing is sorted again. Only the
        videos with more labels than k look at all of `predictions` for their PERR."""
        _refuse_nan(np.asarray(top_scores))
        top_class_ids = np.asarray(top_class_ids, np.int32)
        labels = np.asarray(labels) > 0
        rows = np.arange(len(labels))[:, None]
        top_hits = labels[rows, top_class_ids]
        num_labels = labels.sum(axis=1)
        top_k = top_class_ids.shape[1]
        ranks = np.arange(top_k)[None, :]
        correct = (top_hits & (np.asarray(top_scores) > 0) & (ranks < num_labels[:, None]))
        with np.errstate(divide="ignore", invalid="ignore"):
            perr = np.where(num_labels > 0, correct.sum(axis=1) / num_labels, 0.0)
        beyond_top_k = num_labels > top_k
        if beyond_top_k.any():
            perr[beyond_top_k] = _precision_at_equal_recall(
                np.asarray(predictions, np.float32)[beyond_top_k], labels[beyond_top_k],
                num_labels[beyond_top_k])
        return cls(top_class_ids=top_class_ids, top_scores=np.asarray(top_scores, np.float32),
                   top_hits=top_hits, hit_at_one=top_hits[:, 0], perr=perr,
                   num_labels=num_labels, label_ids=np.nonzero(labels)[1].astype(np.int32))

    def select(self, videos: np.ndarray) -> VideoScores:
        """The scores of the videos where the boolean mask `videos` is true."""
        videos = np.asarray(videos, bool)
        return VideoScores(
            top_class_ids=self.top_class_ids[videos], top_scores=self.top_scores[videos],
            top_hits=self.top_hits[videos], hit_at_one=self.hit_at_one[videos],
            perr=self.perr[videos], num_labels=self.num_labels[videos],
            label_ids=self.label_ids[np.repeat(videos, self.num_labels)])


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

    def per_class_average_precision(self) -> np.ndarray:
        """AP of every class over its entries in the top-k pool ([num_classes])."""
        class_ids, scores, hits = self.pool()
        order = np.lexsort((-scores, class_ids))  # by class, then by descending score
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

    def mean_average_precision(self) -> float:
        """The mean of the per-class APs over the classes with a positive label in the data,
        as the starter's MeanAveragePrecisionCalculator (filter_empty_classes) computes it."""
        present = self.positives_per_class > 0
        return float(self.per_class_average_precision()[present].mean()) if present.any() \
            else 0.0

    def global_average_precision(self) -> float:
        _, scores, hits = self.pool()
        return average_precision(scores, hits, int(self.positives_per_class.sum()))

    def result(self) -> dict[str, float]:
        """The four metrics plus the number of examples."""
        if self.num_examples == 0:
            raise ValueError("no examples were accumulated")
        return {
            "gap": self.global_average_precision(),
            "map": self.mean_average_precision(),
            "hit_at_one": self.sum_hit_at_one / self.num_examples,
            "perr": self.sum_perr / self.num_examples,
            "num_examples": self.num_examples,
        }


def _refuse_nan(scores: np.ndarray) -> None:
    """NaN scores have no rank: the model is broken (diverged training, bad input), and
    metrics of it would mean nothing."""
    nan_videos = np.isnan(scores).any(axis=-1)
    if nan_videos.any():
        raise ValueError(f"the model scored NaN for {int(nan_videos.sum())} of "
                         f"{len(nan_videos)} videos (the first at index "
                         f"{int(np.argmax(nan_videos))} of its batch); no metric can rank them")


def average_precision(scores: np.ndarray, hits: np.ndarray, num_positives: int) -> float:
    """Non-interpolated AP of a ranked list, normalised by `num_positives` (0 if none)."""
    if num_positives == 0 or len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    hit_ranks = np.flatnonzero(np.asarray(hits, bool)[order]) + 1
    del order
    hits_so_far = np.arange(1, len(hit_ranks) + 1)
    return float(np.sum(hits_so_far / hit_ranks) / num_positives)


def _precision_at_equal_recall(predictions: np.ndarray, labels: np.ndarray,
                               num_labels: np.ndarray) -> np.ndarray:
    """Per-video precision of the top-n scores, n = the video's number of labels.

    The top n are those of a stable descending sort (equal scores: lower class first), found
    without sorting all classes: everything above the n-th largest score, then as many of the
    scores equal to it as fill n, in class order. A full sort of every row was most of the
    Evaluator's time.
    """
    most_labels = int(num_labels.max(initial=0))
    if most_labels == 0:
        return np.zeros(len(predictions))
    most_labels = min(most_labels, predictions.shape[1])
    top = -np.sort(np.partition(-predictions, most_labels - 1, axis=1)[:, :most_labels], axis=1)
    rows = np.arange(len(predictions))
    nth_largest = top[rows, np.clip(num_labels, 1, most_labels) - 1][:, None]
    above = predictions > nth_largest
    tied = predictions == nth_largest
    tie_slots = num_labels[:, None] - above.sum(axis=1, keepdims=True)
    in_top_n = above | (tied & (np.cumsum(tied, axis=1) <= tie_slots))
    correct = (labels & (predictions > 0) & in_top_n).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(num_labels > 0, correct / num_labels, 0.0)


def evaluate(predictions, labels, top_k: int = TOP_K) -> dict[str, float]:
    """The four metrics of one [batch, num_classes] prediction matrix."""
    metrics = EvaluationMetrics(np.shape(predictions)[-1], top_k)
    metrics.add(predictions, labels)
    return metrics.result()
