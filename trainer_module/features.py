"""The YouTube-8M feature contract: which features exist, their sizes, and the label encoding."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

NUM_CLASSES_2018, NUM_CLASSES_2017 = 3862, 4716
# The YouTube-8M releases ("generations"), told apart by the key of their video ids:
# video-id key → (generation, number of classes).
GENERATIONS = {"id": ("2018", NUM_CLASSES_2018), "video_id": ("2017", NUM_CLASSES_2017)}
LABELS_KEY = "labels"
MULTI_HOT_LABELS_KEY = "labels_multi_hot"
VERTICALS_KEY = "vertical1"  # Transform output: the top-level verticals of the labels
VIDEO_ID_KEYS = tuple(GENERATIONS)

VIDEO_LEVEL_FEATURES = {"mean_rgb": 1024, "mean_audio": 128}
FRAME_LEVEL_FEATURES = {"rgb": 1024, "audio": 128}
NUM_FRAMES_KEY = "num_frames"  # frame-level models also take each video's real frame count
DEFAULT_MAX_FRAMES = 300  # the starter code's --max_frames


class FeatureSpecError(ValueError):
    """A user-supplied feature configuration that cannot work with the data."""


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """The ordered features a model reads, with their per-example (or per-frame) sizes."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    @classmethod
    def from_flags(cls, feature_names: str, feature_sizes: str) -> FeatureSpec:
        """Parses the starter code's comma-separated `--feature_names` and `--feature_sizes`."""
        names = tuple(n.strip() for n in feature_names.split(",") if n.strip())
        try:
            sizes = tuple(int(s) for s in feature_sizes.split(",") if s.strip())
        except ValueError:
            raise FeatureSpecError(
                f"--feature_sizes must be comma-separated integers, got {feature_sizes!r}"
            ) from None
        spec = cls(names, sizes)
        spec.validate()
        return spec

    @classmethod
    def of(cls, features: dict[str, int]) -> FeatureSpec:
        """The spec of a {name: size} mapping such as FRAME_LEVEL_FEATURES."""
        return cls(tuple(features), tuple(features.values()))

    def items(self) -> list[tuple[str, int]]:
        """(name, size) pairs in model-input order."""
        return list(zip(self.names, self.sizes, strict=True))

    @property
    def is_frame_level(self) -> bool:
        return all(name in FRAME_LEVEL_FEATURES for name in self.names)

    def validate(self) -> None:
        """Raises FeatureSpecError naming the offending flag value."""
        if not self.names:
            raise FeatureSpecError("--feature_names is empty")
        if len(self.names) != len(self.sizes):
            raise FeatureSpecError(
                f"--feature_names has {len(self.names)} entries ({','.join(self.names)}) but "
                f"--feature_sizes has {len(self.sizes)} ({','.join(map(str, self.sizes))})"
            )
        known = {**VIDEO_LEVEL_FEATURES, **FRAME_LEVEL_FEATURES}
        for name, size in zip(self.names, self.sizes, strict=True):
            if name not in known:
                raise FeatureSpecError(
                    f"unknown feature name {name!r}; YouTube-8M features are "
                    f"{', '.join(sorted(known))}"
                )
            if size <= 0:
                raise FeatureSpecError(f"feature {name!r} has non-positive size {size}")
        levels = {name in FRAME_LEVEL_FEATURES for name in self.names}
        if len(levels) > 1:
            raise FeatureSpecError(
                "--feature_names mixes video-level and frame-level features: "
                + ",".join(self.names)
            )

    def to_dict(self) -> dict:
        return {"feature_names": ",".join(self.names),
                "feature_sizes": ",".join(map(str, self.sizes))}


def multi_hot(labels: tf.SparseTensor, num_classes: int) -> tf.Tensor:
    """Turns a batch of variable-length class-id lists into a dense [batch, num_classes] float
    multi-hot matrix, the label layout TFMA and the losses need."""
    indicator = tf.sparse.to_indicator(tf.cast(labels, tf.int64), num_classes)
    return tf.cast(indicator, tf.float32)
