"""The YouTube-8M 2018 vocabulary: a name and verticals for each of the 3,862 class ids."""

from __future__ import annotations

import csv
import dataclasses
import functools
import os

import numpy as np

from trainer_module.features import NUM_CLASSES_2018

VOCABULARY_CSV = os.path.join(os.path.dirname(__file__), "vocabulary.csv")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Per class id: its name, top-level vertical and number of training videos."""

    names: tuple[str, ...]
    verticals: tuple[str, ...]
    train_video_counts: tuple[int, ...]


@functools.cache
def load_vocabulary(path: str = VOCABULARY_CSV) -> Vocabulary:
    """Reads the official vocabulary.csv (Index, TrainVideoCount, Name, Vertical1, …)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: int(row["Index"]))
    if [int(row["Index"]) for row in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: Index must number the classes 0..{len(rows) - 1}")
    return Vocabulary(
        names=tuple(row["Name"] or f"class {row['Index']}" for row in rows),
        verticals=tuple(row["Vertical1"] or "(none)" for row in rows),
        train_video_counts=tuple(int(row["TrainVideoCount"] or 0) for row in rows))


def label_names(num_classes: int) -> list[str]:
    """Class names for the 2018 vocabulary; other datasets (the 2017 release's 4,716 classes,
    whose names are not public here) get their class ids as names."""
    if num_classes == NUM_CLASSES_2018:
        return list(load_vocabulary().names)
    return [str(class_id) for class_id in range(num_classes)]


def class_verticals() -> tuple[list[str], np.ndarray]:
    """The sorted top-level verticals (Vertical1) and a [classes, verticals] bool matrix that
    is True where the class belongs to the vertical (each class belongs to exactly one)."""
    vocabulary = load_vocabulary()
    verticals = sorted(set(vocabulary.verticals))
    index = {vertical: column for column, vertical in enumerate(verticals)}
    membership = np.zeros((len(vocabulary.verticals), len(verticals)), bool)
    membership[np.arange(len(vocabulary.verticals)),
               [index[vertical] for vertical in vocabulary.verticals]] = True
    return verticals, membership
