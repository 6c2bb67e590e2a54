"""The Transform outputs the Evaluator slices and scores by."""

import numpy as np
import tensorflow as tf

from trainer_module.transform import NO_LABELS_VERTICAL, label_verticals
from trainer_module.vocabulary import load_vocabulary


def test_each_video_gets_the_verticals_of_its_labels_and_nothing_else():
    verticals = load_vocabulary().verticals
    games = verticals.index("Games")
    autos = verticals.index("Autos & Vehicles")
    another_game = verticals.index("Games", games + 1)
    labels = np.zeros((3, len(verticals)), np.float32)
    labels[0, [games, autos, another_game]] = 1
    labels[1, autos] = 1  # row 2 has no labels

    rows = label_verticals(tf.constant(labels)).numpy()

    assert rows.shape[0] == 3 and rows.shape[1] == len(set(verticals))
    assert {v.decode() for v in rows[0]} == {"Games", "Autos & Vehicles"}
    assert {v.decode() for v in rows[1]} == {"Autos & Vehicles"}
    assert {v.decode() for v in rows[2]} == {NO_LABELS_VERTICAL}
