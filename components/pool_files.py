"""`PoolOnLocalDisk`: the YouTube-8M metrics' accumulator (`EvaluationMetrics`) with its pool
in local files, for the Evaluator's metrics (`components.tfma_metrics`) when Beam runs in
this process.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid

import numpy as np

from contract.saved_model import TOP_K
from trainer_module.metrics import EvaluationMetrics
from trainer_module.video_scores import VideoScores


class PoolOnLocalDisk(EvaluationMetrics):
    """EvaluationMetrics that keeps its pool (20 entries a video, per slice and model) in
    local files of up to CHUNK_ENTRIES entries, written as it grows and when it is pickled,
    and read back (and removed) only for the result. For Beam in this process: its in-memory
    runner holds every slice's accumulator until the input ends, and then ~4 encoded copies
    of each as it moves them from the precombine to the final combine (memray, 1.1 M
    videos: most of the Evaluator's peak). The files live in a directory of this process's
    temporary directory; what a failed run leaves there goes when the process exits.
    """

    CHUNK_ENTRIES = 1 << 20  # ~7 MB in memory
    _directory: str | None = None

    def __init__(self, num_classes: int, top_k: int = TOP_K):
        super().__init__(num_classes, top_k)
        self._pool_files: list[str] = []

    def add_scores(self, scores: VideoScores) -> None:
        super().add_scores(scores)
        if sum(map(len, self._scores)) >= self.CHUNK_ENTRIES:
            self._spill()

    def merge(self, other: EvaluationMetrics) -> None:
        super().merge(other)
        if isinstance(other, PoolOnLocalDisk):
            self._pool_files.extend(other._pool_files)

    def pool(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for path in self._pool_files:
            with open(path, "rb") as file:
                class_ids, scores, packed_hits = (np.load(file) for _ in range(3))
            self._class_ids.append(class_ids)
            self._scores.append(scores)
            self._hits.append(np.unpackbits(packed_hits, count=len(scores)).view(bool))
            os.remove(path)  # each pickled state is unpickled once, by the final combine
        self._pool_files = []
        return super().pool()

    def __getstate__(self) -> dict:
        self._spill()
        return super().__getstate__()

    def _spill(self) -> None:
        """Moves the pool's entries in memory to a new file."""
        self.compact()
        if self._scores:
            path = os.path.join(self._pool_directory(), uuid.uuid4().hex)
            with open(path, "wb") as file:
                for array in (self._class_ids[0], self._scores[0],
                              np.packbits(self._hits[0])):
                    np.save(file, array)
            self._pool_files.append(path)
            self._class_ids, self._scores, self._hits = [], [], []

    @classmethod
    def _pool_directory(cls) -> str:
        if cls._directory is None:
            cls._directory = tempfile.mkdtemp(prefix="yt8m-tfx-pools-")
            atexit.register(shutil.rmtree, cls._directory, ignore_errors=True)
        return cls._directory
