"""Shard patterns on local disks and object stores alike, their compression, and output
files that appear only when complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

GZIP_SUFFIX = ".gz"  # TFX ExampleGen writes gzipped shards; the public dataset is plain


def expand_pattern(pattern: str) -> list[str]:
    """The files `pattern` matches, sorted: a local glob or one on any filesystem TensorFlow
    reads (gs://, s3://, hdfs://, ram://). An empty list if none."""
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(pattern))


def compression_of(path: str) -> str:
    """The TFRecord compression of a shard ("GZIP" or ""), from its name."""
    return "GZIP" if path.endswith(GZIP_SUFFIX) else ""


@contextlib.contextmanager
def written_atomically(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path` to write; renames it to `path` only if the block
    succeeds, and removes it otherwise, so a failure never leaves a half-written file."""
    partial = path + ".partial"
    try:
        yield partial
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
