"""Which videos of a batch belong to which TFMA slice, as TFMA would key them, found per
batch instead of per video (`components.tfma_extractors` hands each slice its videos).

A column's values are the raw features' (TFMA's features extractor decodes them).
`vertical1` (the 2018 vocabulary's top-level verticals, which the Transform derives for
TFMA's own path) is derived here from the label ids the models' `evaluate_examples`
signature returns, by the Transform's rule (`label_verticals`), so no Transform runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.slicer import slice_accessor, slicer_lib
from tensorflow_model_analysis.utils import util as tfma_util

from trainer_module.features import VERTICALS_KEY
from trainer_module.transform import NO_LABELS_VERTICAL
from trainer_module.video_scores import VideoScores
from trainer_module.vocabulary import class_verticals


def slicing_features(eval_config: config_pb2.EvalConfig) -> set[str]:
    """The names of every column `eval_config`'s slices read."""
    return {name for spec in eval_config.slicing_specs
            for name in (*spec.feature_keys, *spec.feature_values)}


class SliceGrouper:
    """{slice key: boolean mask of its videos} of each batch, for `eval_config`'s slices."""

    def __init__(self, eval_config: config_pb2.EvalConfig):
        self._slice_specs = ([slicer_lib.SingleSliceSpec(spec=spec)
                              for spec in eval_config.slicing_specs]
                             or [slicer_lib.SingleSliceSpec()])
        self.slicing_features = slicing_features(eval_config)
        self._slice_keys = slice_key_extractor.ExtractSliceKeysFn(eval_config,
                                                                  materialize=False)
        # Slices by one column each (or overall) are found per distinct value, not per video.
        self._slice_columns = None
        if all(len(spec.feature_keys) <= 1 and not spec.feature_values
               for spec in eval_config.slicing_specs):
            self._slice_columns = [next(iter(spec.feature_keys), None)
                                   for spec in eval_config.slicing_specs] or [None]
        self._key_of_value: dict[tuple, tuple] = {}
        self._verticals = None
        if VERTICALS_KEY in self.slicing_features:
            names, membership = class_verticals()
            self._verticals = (np.array([name.encode() for name in
                                         (*names, NO_LABELS_VERTICAL)], object),
                               membership.argmax(axis=1))

    def videos_by_slice(self, batched_extracts: dict,
                        labelled: VideoScores) -> Iterator[tuple[tuple, np.ndarray]]:
        """(slice key, boolean mask of its videos) for every slice of the batch; `labelled`
        holds the batch's labels."""
        num_videos = len(labelled.num_labels)
        if not self.slicing_features:
            yield (), np.ones(num_videos, bool)
            return
        columns = self._columns(batched_extracts, labelled)
        by_value = self._slice_columns and self._videos_by_value(columns, num_videos)
        if by_value is not None:
            yield from by_value.items()
            return
        # Unbatch only the slicing features, and let TFMA find each video's slice keys.
        slicing_columns = {constants.FEATURES_KEY: {
            name: values if names is None else names[values]
            for name, (values, names) in columns.items()}}
        by_video = (_split_dense(slicing_columns, num_videos)
                    or tfma_util.split_extracts(slicing_columns))
        members: dict[tuple, list[int]] = {}
        for video, video_columns in enumerate(by_video):
            keyed = self._slice_keys.process(video_columns, self._slice_specs)[0]
            for slice_key in keyed[constants.SLICE_KEY_TYPES_KEY]:
                members.setdefault(slice_key, []).append(video)
        for slice_key, videos in members.items():
            mask = np.zeros(num_videos, bool)
            mask[videos] = True
            yield slice_key, mask

    def _columns(self, batched_extracts: dict, labelled: VideoScores) -> dict[str, tuple]:
        """{column: (values with the videos first, the names of coded values or None)}: the
        raw features', `vertical1` from the labels. Columns no video has are left out, as
        TFMA leaves their slices out."""
        raw = batched_extracts.get(constants.FEATURES_KEY) or {}
        columns = {name: (raw[name], None) for name in self.slicing_features
                   if raw.get(name) is not None}
        if VERTICALS_KEY in self.slicing_features and VERTICALS_KEY not in columns:
            columns[VERTICALS_KEY] = (self._label_verticals(labelled), self._verticals[0])
        return columns

    def _label_verticals(self, labelled: VideoScores) -> np.ndarray:
        """[videos, most labels] the vertical of each label (indices into the names); a
        video's row repeats its first vertical, or holds NO_LABELS_VERTICAL alone, as the
        Transform's `label_verticals` lays them out."""
        names, class_vertical = self._verticals
        num_labels = labelled.num_labels
        width = max(1, int(num_labels.max(initial=0)))
        positions = np.minimum(np.arange(width)[None, :], np.maximum(num_labels, 1)[:, None] - 1)
        starts = np.cumsum(num_labels) - num_labels
        label_verticals = np.append(class_vertical[labelled.label_ids], len(names) - 1)
        # A video without labels points past every label: NO_LABELS_VERTICAL, last.
        at = np.where(num_labels[:, None] > 0, starts[:, None] + positions,
                      len(label_verticals) - 1)
        return label_verticals[at]

    def _videos_by_value(self, columns: dict[str, tuple],
                         num_videos: int) -> dict[tuple, np.ndarray] | None:
        """{slice key: mask of its videos} when every slice is overall or by one column and
        each column is a numpy array with the videos first; None otherwise. Each distinct
        value is one slice, keyed by TFMA itself."""
        masks: dict[tuple, np.ndarray] = {}
        for column in self._slice_columns:
            if column is None:
                masks[()] = np.ones(num_videos, bool)
                continue
            if column not in columns:  # no video has the column: no slice, as in TFMA
                continue
            rows, names = columns[column]
            if not (isinstance(rows, np.ndarray) and rows.ndim in (1, 2)
                    and len(rows) == num_videos):
                return None
            rows = rows.reshape(num_videos, -1)
            values, positions = np.unique(rows, return_inverse=True)
            has_value = np.zeros((num_videos, len(values)), bool)
            has_value[np.repeat(np.arange(num_videos), rows.shape[1]), positions.ravel()] = True
            for index, value in enumerate(values):
                key = self._slice_key(column, value if names is None else names[value])
                masks[key] = masks.get(key, False) | has_value[:, index]
        return masks

    def _slice_key(self, column: str, value) -> tuple:
        """TFMA's slice key for one value of a column (its text and number conversions)."""
        if (column, value) not in self._key_of_value:
            accessor = slice_accessor.SliceAccessor([{column: np.array([value])}])
            (self._key_of_value[column, value],) = slicer_lib.SingleSliceSpec(
                columns=[column]).generate_slices(accessor)
        return self._key_of_value[column, value]


def _split_dense(columns: dict, num_videos: int) -> list[dict] | None:
    """`columns` per video when every value is a numpy array with the videos first, as
    TFMA's `split_extracts` splits them (a [videos] array gives each video a 1-value array)
    without its per-value conversions; None for any other value (sparse, ragged)."""
    leaves = []

    def collect(node):
        for value in node.values():
            if isinstance(value, Mapping):
                collect(value)
            else:
                leaves.append(value)

    collect(columns)
    if not all(isinstance(leaf, np.ndarray) and leaf.ndim in (1, 2)
               and len(leaf) == num_videos for leaf in leaves):
        return None

    def row(node, video):
        return {key: row(value, video) if isinstance(value, Mapping)
                else value[video] if value.ndim == 2 else value[video:video + 1]
                for key, value in node.items()}

    return [row(columns, video) for video in range(num_videos)]
