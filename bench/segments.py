"""`make bench`'s segment section (the 2019 task): the submission path's rate against
in-process scoring of the same segments, and its peak memory at 10x the input.

The input is the real-length generated frame-level videos (bench.run) with fixture ratings
(data_tools.make_segment_data): ~1,100 videos, ~47 k five-second segments. The memory row
runs the submission CLI in a fresh process on those shards and on ten copies of them, with
K = `MEMORY_K` segments kept per class, so that the 1x input already fills every class's K:
the peak then stays flat, bounded by classes x K, whatever the input adds.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

from bench.pipelines import log
from contract.saved_model import SERVING_SEGMENTS_SIGNATURE

MEMORY_K = 1_000  # below the 1x input's segments per class (~47 k), so that K binds at 1x
COPIES = 10


def _segment_model(workdir: str, pattern: str) -> str:
    """A FrameLevelLogisticModel trained briefly on the rated segments, exported."""
    from trainer_module.train import train_and_export
    from trainer_module.training_config import TrainingConfig

    config = TrainingConfig(model="FrameLevelLogisticModel", feature_names="rgb,audio",
                            feature_sizes="1024,128", segment_labels=True)
    files = sorted(glob.glob(pattern))
    export_dir = f"{workdir}/segment_model"
    train_and_export(config, files, files, train_steps=5, export_dir=export_dir,
                     log_dir=f"{workdir}/segment_logs")
    return export_dir


# The child reports its own high-water mark: a forked child's ru_maxrss (wait4) starts
# from the parent's, which holds TensorFlow and this benchmark's data.
_CHILD = ("import sys\n"
          "from evaluation.segments import main\n"
          "code = main(sys.argv[1:])\n"
          "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
          "print(int(status.split()[0]), file=sys.stderr)\n"
          "sys.exit(code)\n")


def _peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory (VmHWM) of one run of the submission CLI, in its own process."""
    run = subprocess.run([sys.executable, "-c", _CHILD, *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env={**os.environ,
                                                                 "TF_CPP_MIN_LOG_LEVEL": "2"})
    if run.returncode != 0:
        raise RuntimeError(f"evaluation.segments {' '.join(args)} failed: {run.stderr[-500:]}")
    return int(run.stderr.strip().splitlines()[-1]) / 1024  # KiB


def bench_segments(workdir: str, frames_root: str) -> list[dict]:
    import tensorflow as tf

    from data_tools.make_segment_data import main as make_segment_data
    from evaluation.segments import rank_segments, write_submission

    rated = f"{workdir}/segments_real_length"
    make_segment_data([f"--input_pattern={frames_root}/train/*.tfrecord",
                       f"--output_dir={rated}/1x"])
    pattern = f"{rated}/1x/*.tfrecord"
    model_dir = _segment_model(workdir, pattern)
    rank_segments(model_dir, pattern, progress=False)  # warm: trace, page cache
    start = time.perf_counter()
    ranking = rank_segments(model_dir, pattern, progress=False)
    write_submission(ranking, f"{workdir}/segments.csv")
    submission_rate = ranking.num_segments / (time.perf_counter() - start)

    serve = tf.saved_model.load(model_dir).signatures[SERVING_SEGMENTS_SIGNATURE]
    batches = list(tf.data.TFRecordDataset(sorted(glob.glob(pattern))).batch(256))
    serve(examples=batches[0])
    start = time.perf_counter()
    for batch in batches:
        serve(examples=batch)
    direct_rate = ranking.num_segments / (time.perf_counter() - start)
    log(f"segments: submission {submission_rate:.0f}/s vs in-process {direct_rate:.0f}/s")

    os.makedirs(f"{rated}/{COPIES}x")
    for copy in range(COPIES):
        for path in glob.glob(pattern):
            os.symlink(path, f"{rated}/{COPIES}x/{copy}-{os.path.basename(path)}")
    peaks = {scale: _peak_rss_mb([f"--model_dir={model_dir}", f"--segment_max_pred={MEMORY_K}",
                                  f"--input_data_pattern={rated}/{scale}/*.tfrecord",
                                  f"--output_file={workdir}/segments-{scale}.csv"])
             for scale in ("1x", f"{COPIES}x")}
    log(f"segments: peak RSS {peaks['1x']:.0f} MB at 1x, {peaks[f'{COPIES}x']:.0f} MB at "
        f"{COPIES}x")
    return [{"section": "segments",
             "name": "segment submission (read, score every segment, top K per class, write)",
             "rate": submission_rate, "unit": "segments/s", "baseline": direct_rate,
             "ratio": submission_rate / direct_rate, "segments": ranking.num_segments},
            {"section": "segments",
             "name": f"segment submission peak RSS at {COPIES}x input (K={MEMORY_K})",
             "rate": peaks[f"{COPIES}x"], "unit": "MB", "baseline": peaks["1x"],
             "ratio": peaks[f"{COPIES}x"] / peaks["1x"], "target": 1.2}]
