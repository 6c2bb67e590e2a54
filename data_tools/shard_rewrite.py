"""One output shard per input shard, record by record: the loop the data generators share
(`make_frame_data`, `make_segment_data`). Each output is written atomically, under the
input's file name."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from data_tools.checks import PreflightError
from shards.files import expand_pattern, written_atomically


def rewrite_shards(input_pattern: str, output_dir: str, rewrite: Callable[[bytes, str], bytes],
                   description: str) -> tuple[int, int]:
    """Writes `rewrite(record, input path)` of every record of every shard matched; returns
    (records, shards). `rewrite` raises PreflightError naming the path for bad input."""
    import tensorflow as tf
    from tqdm import tqdm

    inputs = expand_pattern(input_pattern)
    if not inputs:
        raise PreflightError(f"--input_pattern {input_pattern} matches no files")
    os.makedirs(output_dir, exist_ok=True)
    total = 0
    with tqdm(unit=" videos", desc=description, file=sys.stderr) as progress:
        for path in inputs:
            output = os.path.join(output_dir, os.path.basename(path))
            with written_atomically(output) as partial, tf.io.TFRecordWriter(partial) as writer:
                for record in tf.data.TFRecordDataset(path):
                    writer.write(rewrite(record.numpy(), path))
                    total += 1
                    progress.update(1)
    return total, len(inputs)
