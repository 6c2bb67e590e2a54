"""The HTML evaluation report, without TFX: the four metrics, GAP per top-level vertical,
per-class AP against training frequency, and the precision-recall curve of the pooled top-k,
as static PNG plots embedded in one self-contained HTML file.

Written by every pipeline run (`components.evaluation_report`, with GAP per vertical from the
Evaluator's TFMA slices) and by the evaluation CLI, which computes the same numbers in numpy
the way TFMA slices a multivalent feature: a video counts in every vertical one of its labels
belongs to (`Vertical1` of the 2018 vocabulary).
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from contract.saved_model import SCORES_OUTPUT, TOP_K
from serving.batch_predict import INFERENCE_BATCH_SIZE
from trainer_module.export import load_training_config
from trainer_module.metrics import EvaluationMetrics, descending_order, metric_titles


class ReportAccumulator:
    """Accumulates scores and labels overall and per vertical; renders the report."""

    def __init__(self, num_classes: int, top_k: int = TOP_K, per_vertical: bool = True):
        """`per_vertical=False` skips the numpy per-vertical GAP, for callers that have
        TFMA's (the `vertical_rows` of `html`)."""
        from trainer_module.features import NUM_CLASSES_2018
        from trainer_module.vocabulary import class_verticals, load_vocabulary

        self.overall = EvaluationMetrics(num_classes, top_k)
        self.vocabulary = load_vocabulary() if num_classes == NUM_CLASSES_2018 else None
        self.by_vertical: dict[str, EvaluationMetrics] = {}
        if self.vocabulary and per_vertical:
            self.verticals, self.class_vertical = class_verticals()
            self.by_vertical = {v: EvaluationMetrics(num_classes, top_k) for v in self.verticals}

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        reduced = self.overall.scores_of(scores, labels)
        self.overall.add_scores(reduced)
        if not self.by_vertical:
            return
        in_vertical = (labels > 0) @ self.class_vertical  # [batch, verticals]
        for column, vertical in enumerate(self.verticals):
            rows = in_vertical[:, column]
            if rows.any():
                self.by_vertical[vertical].add_scores(reduced.select(rows))

    def metrics(self) -> dict[str, float]:
        return self.overall.result()

    def html(self, title: str, details: dict[str, str],
             vertical_rows: list[tuple[str, int, float]] | None = None,
             segment_metrics: dict | None = None) -> str:
        """The report page; plots are embedded PNGs. `vertical_rows` (vertical, videos, GAP),
        e.g. from TFMA's slices, replace the per-vertical GAP computed here.
        `segment_metrics` (`segment_map`, `segment_classes`, `segment_count`, `max_pred`)
        add the 2019 segment task's section, first."""
        # The pool's order, sorted once for the metrics, the per-class APs and the PR curve.
        descending = self.overall.descending_scores()
        metrics = self.overall.result(descending)
        titles = metric_titles(self.overall.top_k)
        rows = "".join(f"<tr><td>{titles[name]}</td><td>{metrics[name]:.4f}</td></tr>"
                       for name in titles)
        rows += f"<tr><td>videos</td><td>{metrics['num_examples']}</td></tr>"
        about = "".join(f"<li>{html.escape(k)}: <code>{html.escape(v)}</code></li>"
                        for k, v in details.items())
        parts = [f"<h1>{html.escape(title)}</h1><ul>{about}</ul>"]
        if segment_metrics:
            parts.append(_segment_section(segment_metrics))
        parts.append(f"<h2 id='metrics'>Metrics</h2><table class='metrics'>{rows}</table>")
        parts.append("<h2 id='verticals'>GAP per top-level vertical</h2>")
        if self.vocabulary:
            rows = sorted(vertical_rows or self.vertical_rows(), key=lambda row: -row[1])
            parts.append(self._vertical_table(rows) + _img(self._vertical_plot(rows)))
        else:
            parts.append("<p>No vocabulary for this class count (only the 2018 vocabulary "
                         "is bundled), so no verticals.</p>")
        parts.append("<h2 id='classes'>Per-class AP against training frequency</h2>")
        parts.append(_img(self._class_plot(descending)))
        parts.append(f"<h2 id='pr'>Precision-recall of the pooled top-{self.overall.top_k}</h2>")
        parts.append(_img(self._pr_plot(descending)))
        style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
                 "img{max-width:100%}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                f"{html.escape(title)}</title><style>{style}</style></head><body>"
                + "".join(parts) + "</body></html>")

    def vertical_rows(self) -> list[tuple[str, int, float]]:
        """(vertical, videos, GAP) for each vertical with videos, the largest first."""
        rows = [(v, m.num_examples, m.global_average_precision())
                for v, m in self.by_vertical.items() if m.num_examples]
        return sorted(rows, key=lambda row: -row[1])

    def _vertical_table(self, rows: list[tuple[str, int, float]]) -> str:
        body = "".join(f"<tr><td>{html.escape(v)}</td><td>{n}</td><td>{gap:.4f}</td></tr>"
                       for v, n, gap in rows)
        return ("<table class='verticals'><tr><th>vertical</th><th>videos</th>"
                f"<th>GAP@{self.overall.top_k}</th></tr>{body}</table>")

    def _vertical_plot(self, rows: list[tuple[str, int, float]]):
        rows = rows[::-1]
        figure, axes = _figure(height=max(3, 0.3 * len(rows)))
        axes.barh([r[0] for r in rows], [r[2] for r in rows])
        axes.set_xlabel(f"GAP@{self.overall.top_k}")
        return figure

    def _class_plot(self, descending: np.ndarray):
        aps = self.overall.per_class_average_precision(descending)
        present = self.overall.positives_per_class > 0
        figure, axes = _figure()
        if self.vocabulary:
            counts = np.asarray(self.vocabulary.train_video_counts, float)
            axes.set_xlabel("training videos of the class (official 2018 train partition)")
        else:
            counts = self.overall.positives_per_class.astype(float)
            axes.set_xlabel("videos of the class in this data")
        axes.scatter(np.maximum(counts[present], 1), aps[present], s=6, alpha=0.5)
        axes.set_xscale("log")
        axes.set_ylabel("AP (classes present in this data)")
        return figure

    def _pr_plot(self, descending: np.ndarray):
        _, scores, hits = self.overall.pool()
        recall, precision = precision_recall_curve(
            scores, hits, int(self.overall.positives_per_class.sum()), descending)
        figure, axes = _figure()
        axes.plot(recall, precision)
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        return figure


PR_CURVE_POINTS = 2_000  # a plot's worth: the pool has 20 entries a video


def precision_recall_curve(scores: np.ndarray, hits: np.ndarray, num_positives: int,
                           descending: np.ndarray | None = None,
                           points: int = PR_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) of the pool ranked by descending score, at `points` ranks evenly
    spread from the first to the last (every rank of a shorter pool); `descending`: the
    order of `scores` by descending score (stable), when known. The whole curve of a full
    validation split is 22 M points, which matplotlib held several times over."""
    order = descending_order(scores) if descending is None else descending
    found = np.cumsum(np.asarray(hits, bool)[order])
    ranks = np.unique(np.linspace(0, len(found) - 1, min(points, len(found))).astype(np.int64))
    found = found[ranks]
    return found / max(1, num_positives), found / (ranks + 1)


def _segment_section(metrics: dict) -> str:
    """Segment MAP@K with what it covers."""
    rows = (f"<tr><td>MAP@{metrics['max_pred']}</td><td>{metrics['segment_map']:.4f}</td></tr>"
            f"<tr><td>segments scored</td><td>{metrics['segment_count']:.0f}</td></tr>")
    if "segment_classes" in metrics:
        rows += (f"<tr><td>classes with a positive rating</td>"
                 f"<td>{metrics['segment_classes']}</td></tr>")
    return ("<h2 id='segments'>Segments (2019 task)</h2><table class='metrics'>"
            f"{rows}</table><p>Every 5-second segment ranked per rated class; AP over the "
            "rated segments of each class's top K. The video-level metrics below score whole "
            "videos against their video labels.</p>")


def _figure(height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, height), dpi=90)
    axes.grid(alpha=0.3)
    return figure, axes


def _img(figure) -> str:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def score_labelled_files(model_dir: str, files: list[str],
                         batch_size: int = INFERENCE_BATCH_SIZE,
                         per_vertical: bool = True) -> ReportAccumulator:
    """Scores labelled shards with the exported model's `serving_default`."""
    import tensorflow as tf

    from serving.batch_predict import score_shards
    from trainer_module.features import LABELS_KEY, multi_hot
    from trainer_module.reader import parse_examples

    config = load_training_config(model_dir)
    report = ReportAccumulator(config.num_classes, config.top_k, per_vertical)
    for records, _, outputs in score_shards(model_dir, files, batch_size):
        labels = parse_examples(records, config.feature_spec(), with_labels=True,
                                max_frames=config.max_frames)[LABELS_KEY]
        try:
            report.add(outputs[SCORES_OUTPUT], multi_hot(labels, config.num_classes).numpy())
        except tf.errors.InvalidArgumentError:
            raise ValueError(f"a label is outside the model's {config.num_classes} classes "
                             "(2017 data has 4,716 classes, 2018 data 3,862)") from None
    return report
