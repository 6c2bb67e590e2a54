"""The SavedModel contract shared by the Trainer's export, TFMA, batch inference, the REST
server and its clients: every signature, input and output name, `TOP_K`, the model
directory's layout and the one top-k ranking. It imports nothing of the project, so that
`serving/` needs only this (and `shards/`), never `trainer_module/`.

Signatures (all return `scores` [batch, num_classes] and the top `top_k` classes as
`top_k_class_ids`, `top_k_scores` and `top_k_labels`, their names in the vocabulary):
- `serving_default`: `examples`, a batch of serialized tf.Examples (video level) or
  tf.SequenceExamples (frame level); b64 in REST requests. Also returns `video_id`, each
  example's 2018 `id` or 2017 `video_id` ("" if it has neither).
- `predict_features`: video level only, the raw float features by name (JSON-friendly).
- `transform_features`: serialized examples → Transform outputs incl. the multi-hot label
  (the Evaluator's preprocessing function; present when a Transform graph is given).
- `evaluate_examples`: `examples`, serialized labelled examples → what the metrics need of
  each, in one call: `ranked_class_ids` and `ranked_scores`, the top max(top_k, the most
  labels of a video in the batch) classes ranked as above, `ranked_hits` whether each is one
  of the video's labels, and `true_class_ids` its distinct labels ascending, -1 after the last.
- `serving_segments` (frame-level models of the 2018 classes): `examples`, serialized
  SequenceExamples → every 5-second segment of each as `segment_ids` (`<video id>:<start>`),
  `segment_start_times` [videos, segments] and `segment_scores` [videos, segments, 1000]: the
  classes of `segment_label_ids.csv`, ascending. A video with fewer segments than the longest
  is padded (start time -1, id "", scores 0).
- `segment_ratings`: the same segments' rated scores `segment_ratings` (UNRATED where nobody
  rated a class), from segment-rated examples (the Evaluator's label for segment MAP).
"""

from __future__ import annotations

import os

import numpy as np

TOP_K = 20  # GAP@20, the Kaggle metric; every top-k default derives from it

# Signatures.
SERVING_DEFAULT_SIGNATURE = "serving_default"
PREDICT_FEATURES_SIGNATURE = "predict_features"
TRANSFORM_FEATURES_SIGNATURE = "transform_features"
SERVING_SEGMENTS_SIGNATURE = "serving_segments"
SEGMENT_RATINGS_SIGNATURE = "segment_ratings"
EVALUATE_EXAMPLES_SIGNATURE = "evaluate_examples"

# The input of the signatures that take serialized tf.Examples / SequenceExamples.
SERIALIZED_EXAMPLES_INPUT = "examples"

# Outputs: all scores [batch, num_classes], and the top k ranked (descending; equal scores,
# lower class first) as class ids, scores and vocabulary names [batch, k].
SCORES_OUTPUT = "scores"
TOP_K_CLASS_IDS_OUTPUT = "top_k_class_ids"
TOP_K_SCORES_OUTPUT = "top_k_scores"
TOP_K_LABELS_OUTPUT = "top_k_labels"
RANKED_CLASS_IDS_OUTPUT = "ranked_class_ids"  # evaluate_examples: [batch, >= k] int32
RANKED_SCORES_OUTPUT = "ranked_scores"
RANKED_HITS_OUTPUT = "ranked_hits"  # [batch, >= k] bool
TRUE_CLASS_IDS_OUTPUT = "true_class_ids"  # [batch, most labels] int32, NO_LABEL_ID after
NO_LABEL_ID = -1
VIDEO_ID_OUTPUT = "video_id"  # the one name for a 2018 `id` or a 2017 `video_id`
SEGMENT_IDS_OUTPUT = "segment_ids"
SEGMENT_START_TIMES_OUTPUT = "segment_start_times"
SEGMENT_SCORES_OUTPUT = "segment_scores"  # the rated classes', in segment_class_ids() order
SEGMENT_RATINGS_OUTPUT = "segment_ratings"
UNRATED = -1.0  # the rating of a (segment, class) nobody rated; ratings are in [0, 1]

# The model directory: TF Serving's <base>/<version>/saved_model.pb, which the Pusher writes
# last; assets.extra/ is ignored by TF Serving, so metadata travels there safely.
SAVED_MODEL_FILENAME = "saved_model.pb"
EXTRA_ASSETS_DIR = "assets.extra"


def is_saved_model(path: str) -> bool:
    """Whether `path` (local or any filesystem TensorFlow reads) holds a whole SavedModel."""
    from tensorflow.io import gfile  # here: the CLIs answer --help and bad flags without TF

    return gfile.exists(os.path.join(path, SAVED_MODEL_FILENAME))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `scores` [rows, classes], the `k` highest-scoring class ids and their
    scores, best first; equal scores in class id order, as the SavedModel's `tf.math.top_k`
    ranks them (so scoring all classes and reading the signature's top k agree on ties).

    Without sorting every class: everything above the k-th largest score, then as many of
    the classes tied with it as fill k, lowest first; only those k are sorted.
    """
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    if k == 0:
        empty = np.zeros((len(scores), 0), np.int64)
        return empty, scores[:, :0]
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    above, tied = scores > kth, scores == kth
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(axis=1, keepdims=True)))
    candidates = np.nonzero(chosen)[1].reshape(len(scores), k)  # ascending class ids
    order = np.argsort(-np.take_along_axis(scores, candidates, axis=1), axis=1, kind="stable")
    class_ids = np.take_along_axis(candidates, order, axis=1)
    return class_ids, np.take_along_axis(scores, class_ids, axis=1)
