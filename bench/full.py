"""`make bench-full`: the whole `make run-local` DAG once on synthetic video-level data of the
full 2018 dataset's size and layout, on this machine.

- Data: 3,888,919 train and 1,112,356 validate videos in 3,844 shards each, as the official
  release has them (`data_tools.make_synthetic_data`: seeded, the planted-signal features
  clipped to the dataset's [-2, 2], 1–5 Zipf-distributed labels). Shards are written
  atomically and independently seeded, so an interrupted generation resumes where it stopped.
- Run: `pipeline.run_local --import_examples` (the shards registered in place as the
  Examples artifact: no copy, so the disk holds the data once), one LogisticModel epoch at
  the default batch, in a fresh process (`bench.pipeline_child`).
- Measured per component: seconds, videos/s, peak RSS, the bytes it wrote under the pipeline
  root, and the peak of the disk's extra use while it ran (temporary files included); the
  total against bench/scale.md's projection from 139 k videos.

Writes bench/full.json and bench/full.md; removes the data and the run unless `--keep`.

    python -m bench.full [--workdir=build/bench_full] [--fraction=1.0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from bench.pipelines import HERE, PROJECT_ROOT, STARTER_BATCH_SIZE, log, run_pipeline
from bench.scale import COMPONENT_INPUT, FULL_2018, split_layout
from shards.files import written_atomically

OFFICIAL_SHARDS = {"train": 3844, "validate": 3844}  # the 2018 video-level release
SEED = 2018
DISK_SAMPLE_SECONDS = 2.0
# bench/scale.md (2026-11-27, TFX 1.16, shards imported in place): each component's time for
# the full dataset projected from its marginal rate between 32k and 131k videos.
PROJECTED_MINUTES = {"StatisticsGen": 20, "Trainer": 12, "Evaluator": 7,
                     "EvaluationReport": 10}


def shard_plan(fraction: float) -> list[tuple[str, int, int]]:
    """(split, shard, videos) of every shard at `fraction` of the full size: the official
    shard count (at least one) with the videos spread evenly."""
    plan = []
    for split, full_videos in FULL_2018.items():
        shards = max(1, round(OFFICIAL_SHARDS[split] * fraction))
        videos = max(shards, round(full_videos * fraction))
        plan += [(split, shard, videos // shards + (shard < videos % shards))
                 for shard in range(shards)]
    return plan


def _write_shards(data_root: str, shards: list[tuple[str, int, int]]) -> int:
    """Writes the shards of `shards` that are not there yet; returns the videos written."""
    from data_tools.make_synthetic_data import class_prototypes, shard_seed, write_shard
    from trainer_module.features import NUM_CLASSES_2018

    class _Count:
        def update(self, _: int) -> None:
            pass

    prototypes, written = class_prototypes(SEED, NUM_CLASSES_2018), 0
    for split, shard, videos in shards:
        path = os.path.join(data_root, split, f"{split}{shard:04d}.tfrecord")
        if not os.path.exists(path):  # written atomically: if it is there, it is whole
            write_shard(path, shard_seed(SEED, split, shard), videos, prototypes, False, 1, 1,
                        _Count())
            written += videos
    return written


def generate(data_root: str, plan: list[tuple[str, int, int]]) -> dict:
    """The shards of `plan` under data_root/{train,validate}/, on every CPU; resumes a
    generation of the same plan, and raises ValueError naming data_root for another one."""
    manifest = os.path.join(data_root, "plan.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            if [tuple(shard) for shard in json.load(f)] != plan:
                raise ValueError(f"{data_root} holds shards of another plan (another "
                                 "--fraction): remove it or pick another --workdir")
    for split in FULL_2018:
        os.makedirs(os.path.join(data_root, split), exist_ok=True)
    with written_atomically(manifest) as partial, open(partial, "w") as f:
        json.dump(plan, f)
    workers = os.cpu_count() or 1
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        written = sum(pool.map(_write_shards, [data_root] * workers,
                               [plan[index::workers] for index in range(workers)]))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "videos_written": written, "bytes": _bytes_under(data_root),
            "videos": {split: sum(v for s, _, v in plan if s == split) for split in FULL_2018}}


def _commit() -> str:
    """The checked-out commit, read from .git (the image has no git), or "unknown"."""
    git = os.path.join(PROJECT_ROOT, ".git")
    try:
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            with open(os.path.join(git, head[5:])) as f:
                head = f.read().strip()
        return head[:7]
    except OSError:
        return "unknown"


def _bytes_under(path: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, name))
               for directory, _, names in os.walk(path) for name in names)


class DiskSampler(threading.Thread):
    """The filesystem's used bytes every DISK_SAMPLE_SECONDS; `peak_extra(start, end)` is the
    most it held above the first sample within a window."""

    def __init__(self, path: str):
        super().__init__(daemon=True)
        self.path, self.samples = path, [(time.time(), shutil.disk_usage(path).used)]
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(DISK_SAMPLE_SECONDS):
            self.samples.append((time.time(), shutil.disk_usage(self.path).used))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak_extra(self, start: float, end: float) -> int:
        inside = [used for at, used in self.samples if start <= at <= end]
        return max(inside, default=self.samples[0][1]) - self.samples[0][1]


def component_rows(run: dict, videos: dict[str, int], pipeline_root: str,
                   disk: DiskSampler) -> list[dict]:
    """Per component of the run: seconds, videos/s, peak RSS, bytes written, peak disk."""
    videos = {**videos, "all": sum(videos.values())}
    rows = []
    for name, seconds in sorted(run["components"].items(),
                                key=lambda item: run["component_windows"][item[0]][0]):
        start, end = run["component_windows"][name]
        read = videos[COMPONENT_INPUT[name]] if name in COMPONENT_INPUT else None
        output = os.path.join(pipeline_root, name)
        rows.append({"component": name, "seconds": seconds, "videos": read,
                     "rate": read / seconds if read and seconds else None,
                     "peak_rss_mb": run["component_peak_rss_mb"].get(name, 0.0),
                     "bytes_written": _bytes_under(output) if os.path.isdir(output) else 0,
                     "peak_disk_extra": disk.peak_extra(start, end),
                     "projected_minutes": PROJECTED_MINUTES.get(name)})
    return rows


def _or_dash(value, form: str) -> str:
    return form.format(value) if value else "-"


def markdown(result: dict) -> str:
    data, run = result["data"], result["run"]
    lines = [f"# make bench-full ({result['date']}, commit {result['commit']}, "
             f"{result['machine']})", "",
             f"Synthetic data: {data['videos']['train']:,} train + "
             f"{data['videos']['validate']:,} validate videos, {result['shards']:,} shards, "
             f"{data['bytes'] / 1e9:.2f} GB, generated in {data['seconds'] / 60:.1f} min "
             f"({data['videos_written']:,} videos written this time). "
             f"DAG with `--import_examples`, one epoch ({run['train_steps']:,} steps of "
             f"{STARTER_BATCH_SIZE}): **{run['wall_seconds'] / 60:.1f} min**, peak RSS "
             f"{run['peak_rss_mb']:,.0f} MB, disk at most {result['peak_disk_extra'] / 1e9:.2f}"
             " GB above the data.", "",
             "| component | minutes | videos | videos/s | peak RSS | wrote | disk peak above "
             "start | projected (bench/scale.md) |", "|---|---|---|---|---|---|---|---|"]
    for row in result["components"]:
        lines.append(
            f"| {row['component']} | {row['seconds'] / 60:.1f} | "
            f"{_or_dash(row['videos'], '{:,}')} | {_or_dash(row['rate'], '{:,.0f}')} | "
            f"{_or_dash(row['peak_rss_mb'], '{:,.0f} MB')} | "
            f"{row['bytes_written'] / 1e6:,.1f} MB | {row['peak_disk_extra'] / 1e9:.2f} GB | "
            f"{_or_dash(row['projected_minutes'], '{} min')} |")
    lines.append(f"| **total** | **{run['wall_seconds'] / 60:.1f}** | | | | | | "
                 f"{sum(PROJECTED_MINUTES.values())} min + fixed costs |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "build", "bench_full"))
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="of the full dataset's videos and shards (a trial run: 0.001)")
    parser.add_argument("--keep", action="store_true", help="keep the data and the run")
    args = parser.parse_args(argv)
    if not 0 < args.fraction <= 1:
        print(f"error: --fraction must be in (0, 1], got {args.fraction}", file=sys.stderr)
        return 2
    import platform

    data_root = os.path.join(args.workdir, "data")
    plan = shard_plan(args.fraction)
    log(f"bench-full: {len(plan):,} shards, {sum(v for *_, v in plan):,} videos in {data_root}")
    try:
        data = generate(data_root, plan)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log(f"bench-full: data ready ({data['bytes'] / 1e9:.1f} GB, {data['seconds']:.0f} s)")
    run_dir = os.path.join(args.workdir, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(os.path.join(args.workdir, "examples"), ignore_errors=True)
    layout = split_layout(data_root, os.path.join(args.workdir, "examples"))
    steps = math.ceil(data["videos"]["train"] / STARTER_BATCH_SIZE)
    disk = DiskSampler(args.workdir)
    disk.start()
    try:
        run = run_pipeline(layout, run_dir, steps,
                           ["--import_examples", "--batch_size", str(STARTER_BATCH_SIZE)])
    finally:
        disk.stop()
    run["train_steps"] = steps
    result = {"date": time.strftime("%Y-%m-%d"), "commit": _commit(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "shards": len(plan), "data": data, "run": run,
              "peak_disk_extra": disk.peak_extra(0, float("inf")),
              "components": component_rows(run, data["videos"],
                                           os.path.join(run_dir, "pipeline_root"), disk)}
    with open(os.path.join(HERE, "full.json"), "w") as f:
        json.dump(result, f, indent=1)
    text = markdown(result)
    with open(os.path.join(HERE, "full.md"), "w") as f:
        f.write(text)
    print(text)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
