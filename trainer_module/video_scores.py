"""`VideoScores`: what the YouTube-8M metrics need of each video, a few numbers instead of
every class's score (its top-k classes and scores, whether each is a label, Hit@1, PERR and
its labels), from all scores or from a ranking the SavedModel already made. The metrics
(`trainer_module.metrics`) pool them; the Evaluator's slices and the report's verticals
select from them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from contract.saved_model import NO_LABEL_ID
from contract.saved_model import top_k as top_k_classes


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
        perr = _precision_at_equal_recall_of_ranked(top_hits, np.asarray(top_scores),
                                                    num_labels)
        beyond_top_k = num_labels > top_class_ids.shape[1]
        if beyond_top_k.any():
            perr[beyond_top_k] = _precision_at_equal_recall(
                np.asarray(predictions, np.float32)[beyond_top_k], labels[beyond_top_k],
                num_labels[beyond_top_k])
        return cls(top_class_ids=top_class_ids, top_scores=np.asarray(top_scores, np.float32),
                   top_hits=top_hits, hit_at_one=top_hits[:, 0], perr=perr,
                   num_labels=num_labels, label_ids=np.nonzero(labels)[1].astype(np.int32))

    @classmethod
    def of_ranked_labels(cls, ranked_class_ids, ranked_scores, ranked_hits, label_ids,
                         top_k: int) -> VideoScores:
        """From the SavedModel's `evaluate_examples` outputs: classes ranked at least
        max(`top_k`, each video's number of labels) deep, whether each is a label, and the
        labels padded with NO_LABEL_ID; no score of any other class is needed."""
        ranked_scores = np.asarray(ranked_scores, np.float32)
        _refuse_nan(ranked_scores)
        ranked_hits = np.asarray(ranked_hits, bool)
        label_ids = np.asarray(label_ids, np.int32)
        is_label = label_ids != NO_LABEL_ID
        num_labels = is_label.sum(axis=1)
        top_k = min(top_k, ranked_hits.shape[1])
        return cls(top_class_ids=np.asarray(ranked_class_ids, np.int32)[:, :top_k],
                   top_scores=ranked_scores[:, :top_k], top_hits=ranked_hits[:, :top_k],
                   hit_at_one=ranked_hits[:, 0],
                   perr=_precision_at_equal_recall_of_ranked(ranked_hits, ranked_scores,
                                                             num_labels),
                   num_labels=num_labels, label_ids=label_ids[is_label])

    def select(self, videos: np.ndarray) -> VideoScores:
        """The scores of the videos where the boolean mask `videos` is true."""
        videos = np.asarray(videos, bool)
        return VideoScores(
            top_class_ids=self.top_class_ids[videos], top_scores=self.top_scores[videos],
            top_hits=self.top_hits[videos], hit_at_one=self.hit_at_one[videos],
            perr=self.perr[videos], num_labels=self.num_labels[videos],
            label_ids=self.label_ids[np.repeat(videos, self.num_labels)])


def _refuse_nan(scores: np.ndarray) -> None:
    """NaN scores have no rank: the model is broken (diverged training, bad input), and
    metrics of it would mean nothing."""
    nan_videos = np.isnan(scores).any(axis=-1)
    if nan_videos.any():
        raise ValueError(f"the model scored NaN for {int(nan_videos.sum())} of "
                         f"{len(nan_videos)} videos (the first at index "
                         f"{int(np.argmax(nan_videos))} of its batch); no metric can rank them")


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


def _precision_at_equal_recall_of_ranked(ranked_hits: np.ndarray, ranked_scores: np.ndarray,
                                         num_labels: np.ndarray) -> np.ndarray:
    """PERR from each video's ranked classes; exact for the videos ranked at least as deep
    as their number of labels."""
    ranks = np.arange(ranked_hits.shape[1])[None, :]
    correct = ranked_hits & (ranked_scores > 0) & (ranks < num_labels[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(num_labels > 0, correct.sum(axis=1) / num_labels, 0.0)
