"""The metrics against hand-worked cases and a literal re-statement of the starter code."""

import pickle

import numpy as np
import pytest

from trainer_module.metrics import (
    EvaluationMetrics,
    average_precision,
    descending_order,
    evaluate,
)
from trainer_module.video_scores import VideoScores


def starter_gap(predictions, labels, top_k=20):
    """The starter code's calculate_gap, restated loop by loop."""
    pool = []
    for p, a in zip(predictions, labels, strict=True):
        for i in np.argsort(-p)[:top_k]:
            pool.append((p[i], a[i]))
    pool.sort(key=lambda t: -t[0])
    positives, hits, ap = labels.sum(), 0, 0.0
    for rank, (_, actual) in enumerate(pool, start=1):
        if actual > 0:
            hits += 1
            ap += hits / rank
    return ap / positives


def starter_map(predictions, labels, top_k=20):
    num_classes = predictions.shape[1]
    per_class = [[] for _ in range(num_classes)]
    for p, a in zip(predictions, labels, strict=True):
        for i in np.argsort(-p)[:top_k]:
            per_class[i].append((p[i], a[i]))
    aps = []
    for c in range(num_classes):
        positives = labels[:, c].sum()
        entries = sorted(per_class[c], key=lambda t: -t[0])
        hits, ap = 0, 0.0
        for rank, (_, actual) in enumerate(entries, start=1):
            if actual > 0:
                hits += 1
                ap += hits / rank
        if positives:  # MeanAveragePrecisionCalculator(filter_empty_classes=True)
            aps.append(ap / positives)
    return float(np.mean(aps))


def test_gap_hand_worked():
    # Pool (top-2 per video) by score: .9 hit, .8 miss, .7 hit, .1 miss; 3 positives in total
    # (video 1's third label, class 3, is outside its top 2).
    predictions = np.array([[0.9, 0.8, 0.0, 0.05], [0.1, 0.0, 0.7, 0.0]])
    labels = np.array([[1, 0, 0, 1], [0, 0, 1, 0]])
    metrics = evaluate(predictions, labels, top_k=2)
    assert metrics["gap"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert metrics["hit_at_one"] == pytest.approx(1.0)
    # PERR: video 0 has 2 labels, top-2 = {0, 1} → 1/2; video 1 has 1 label, top-1 = {2} → 1.
    assert metrics["perr"] == pytest.approx(0.75)
    # mAP over the 3 classes with positives: class 0 AP 1, class 2 AP 1, class 3 has a
    # positive but never entered a top-2 → 0; class 1 has none and does not count.
    assert metrics["map"] == pytest.approx(2 / 3)


def test_perr_ignores_non_positive_scores_and_counts_unlabelled_videos_as_zero():
    predictions = np.array([[0.0, 0.0, 0.0], [0.2, 0.9, 0.1]])
    labels = np.array([[1, 0, 0], [0, 0, 0]])
    assert evaluate(predictions, labels, top_k=3)["perr"] == 0.0


def test_matches_starter_code_restatement_on_random_data():
    rng = np.random.default_rng(7)
    predictions = rng.random((200, 50)).astype(np.float32)
    labels = (rng.random((200, 50)) < 0.06).astype(int)
    metrics = evaluate(predictions, labels, top_k=5)
    assert metrics["gap"] == pytest.approx(starter_gap(predictions, labels, 5), abs=1e-9)
    assert metrics["map"] == pytest.approx(starter_map(predictions, labels, 5), abs=1e-9)


def test_streaming_and_merged_accumulators_equal_one_batch():
    rng = np.random.default_rng(3)
    predictions = rng.random((90, 30))
    labels = (rng.random((90, 30)) < 0.1).astype(int)
    whole = evaluate(predictions, labels, top_k=20)
    first, second = EvaluationMetrics(30, 20), EvaluationMetrics(30, 20)
    for start in range(0, 60, 7):
        first.add(predictions[start:min(start + 7, 60)], labels[start:min(start + 7, 60)])
    second.add(predictions[60:], labels[60:])
    # Beam pickles accumulators between stages: the pool travels with its hits packed to bits.
    first.merge(pickle.loads(pickle.dumps(second)))
    assert first.result() == pytest.approx(whole)


def test_average_precision_normalises_by_all_positives():
    assert average_precision(np.array([0.9, 0.5]), np.array([True, False]), 4) == 0.25
    assert average_precision(np.array([0.9]), np.array([True]), 0) == 0.0


def test_descending_order_is_numpys_stable_argsort_of_the_negated_scores():
    rng = np.random.default_rng(3)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45,
                        np.finfo(np.float32).max, -np.finfo(np.float32).max, 0.5, -0.5],
                       np.float32)
    scores = np.concatenate([special, rng.choice(special, 500),
                             rng.random(3000, dtype=np.float32).round(2),  # many ties
                             rng.standard_normal(3000).astype(np.float32)])
    for values in (scores, rng.permutation(scores), scores[:0], scores[:1]):
        np.testing.assert_array_equal(descending_order(values),
                                      np.argsort(-values, kind="stable"))


def test_rejects_mismatched_shapes_and_empty_results():
    metrics = EvaluationMetrics(num_classes=4)
    with pytest.raises(ValueError, match="must both be"):
        metrics.add(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no examples"):
        metrics.result()


def starter_perr(predictions, labels):
    """The starter code's calculate_precision_at_equal_recall_rate, restated loop by loop
    (its stable descending sort: equal scores keep class order)."""
    total = 0.0
    for p, a in zip(predictions, labels, strict=True):
        num_labels = int(a.sum())
        if num_labels:
            top = np.argsort(-p, kind="stable")[:num_labels]
            total += sum(1 for i in top if a[i] > 0 and p[i] > 0) / num_labels
    return total / len(predictions)


@pytest.mark.parametrize("levels", [None, 4])
def test_perr_matches_starter_code_restatement_with_and_without_ties(levels):
    rng = np.random.default_rng(11)
    predictions = rng.random((300, 40))
    if levels:  # a few score levels: many ties at the n-th score
        predictions = np.floor(predictions * levels) / levels
    labels = (rng.random((300, 40)) < 0.15).astype(int)
    labels[:3] = 0  # videos without labels count as 0
    labels[3] = 1  # a video with every class
    assert evaluate(predictions, labels)["perr"] == pytest.approx(
        starter_perr(predictions, labels), abs=1e-12)


def test_scores_of_selected_videos_equal_scoring_those_videos_alone():
    rng = np.random.default_rng(9)
    predictions = rng.random((40, 30))
    labels = (rng.random((40, 30)) < 0.1).astype(int)
    keep = rng.random(40) < 0.5
    whole = EvaluationMetrics(30, 5)
    selected = EvaluationMetrics(30, 5)
    selected.add_scores(whole.scores_of(predictions, labels).select(keep))
    assert selected.result() == pytest.approx(evaluate(predictions[keep], labels[keep], 5))
    none = EvaluationMetrics(30, 5)
    none.add_scores(whole.scores_of(predictions, labels).select(np.zeros(40, bool)))
    assert none.num_examples == 0 and not none.positives_per_class.any()


@pytest.mark.parametrize("levels", [None, 4])
def test_scores_from_ranked_top_k_equal_scores_from_all_classes(levels):
    """`of_ranked` takes the top k as tf.math.top_k ranks them (descending, ties by lower
    class); videos with more labels than k fall back to all scores for their PERR."""
    rng = np.random.default_rng(13)
    predictions = rng.random((200, 30)).astype(np.float32)
    if levels:
        predictions = np.floor(predictions * levels) / levels
    labels = (rng.random((200, 30)) < 0.15).astype(int)
    labels[0] = 1  # more labels than k
    labels[1] = 0
    top_k = 5
    ranked = np.argsort(-predictions, axis=1, kind="stable")[:, :top_k]
    from_ranked = VideoScores.of_ranked(
        ranked, np.take_along_axis(predictions, ranked, axis=1), predictions, labels)
    metrics = EvaluationMetrics(30, top_k)
    metrics.add_scores(from_ranked)
    # `of` (all scores) chooses among tied scores as tf.math.top_k does: the lower classes.
    expected = evaluate(predictions, labels, top_k)
    assert {name: metrics.result()[name] for name in expected} == pytest.approx(
        expected, abs=1e-12)
    assert metrics.result()["perr"] == pytest.approx(starter_perr(predictions, labels), abs=1e-12)
    assert from_ranked.perr[0] == pytest.approx(np.mean(predictions[0] > 0) * 1.0)


def test_nan_scores_are_refused_with_one_clear_line():
    predictions = np.array([[0.9, 0.1, 0.2], [np.nan, 0.5, 0.1]], np.float32)
    labels = np.array([[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"^the model scored NaN for 1 of 2 videos \(the first "
                                         r"at index 1 of its batch\)"):
        evaluate(predictions, labels, top_k=2)
    with pytest.raises(ValueError, match="scored NaN"):
        VideoScores.of_ranked(np.array([[0, 2], [1, 2]]), np.array([[0.9, 0.2], [np.nan, 0.1]]),
                              predictions, labels)


def test_the_reports_precision_recall_curve_keeps_evenly_spread_points_of_the_whole():
    from evaluation.report import precision_recall_curve

    rng = np.random.default_rng(3)
    scores = np.round(rng.random(5_000), 2)  # ties, which the pool's order breaks stably
    hits = rng.random(5_000) < 0.3
    found = np.cumsum(hits[np.argsort(-scores, kind="stable")])
    whole = list(zip(found / 2_000, found / np.arange(1, 5_001), strict=True))
    recall, precision = precision_recall_curve(scores, hits, 2_000, points=50)
    kept = list(zip(recall, precision, strict=True))
    assert len(kept) == 50 and kept[0] == whole[0] and kept[-1] == whole[-1]
    assert set(kept) <= set(whole)
    recall, precision = precision_recall_curve(scores[:40], hits[:40], 2_000, points=50)
    found = np.cumsum(hits[:40][np.argsort(-scores[:40], kind="stable")])
    np.testing.assert_array_equal(precision, found / np.arange(1, 41))
