"""`make bench-scale` (`python -m bench.run --scale`): every component of `make run-local` at
1×, 8×, 32× and 128× a 1,024-video base, each next to the limit that bounds it, measured on
the same shards in the same run:

- ImportExampleGen, StatisticsGen: raw TFRecord read (tf.data, no parsing); ImportExampleGen
  also against gzip of the same bytes (its copy is written gzip-compressed);
- Evaluator: in-process scoring of the same model (`serving_default` on serialized records);
- Transform, Trainer: no outside limit (one epoch of training).

Time should grow linearly and memory stay flat: the table gives each step's growth against
linear and the projection of every component to the full 2018 dataset from the marginal rate
between the two largest runs.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
import zlib

from bench.pipelines import BATCH_SIZE, log, run_pipeline
from contract.saved_model import SERVING_DEFAULT_SIGNATURE

BASE_TRAIN_VIDEOS = 1024  # 1×; 128× is 131,072 videos, ~0.6 GB
TRAIN_SHARD_VIDEOS = 512
VALIDATE_VIDEOS_PER_FACTOR = 64  # 8,192 validation videos at 128×
FULL_2018 = {"train": 3_888_919, "validate": 1_112_356}  # YouTube-8M 2018 video-level
MIN_MARGINAL_SECONDS = 1.0
GZIP_LEVEL = 6  # zlib's default, which TFRecordWriter's GZIP option uses

# Which videos each component reads, and which limit it is held against.
COMPONENT_INPUT = {"ImportExampleGen": "all", "StatisticsGen": "all", "Transform": "train",
                   "Trainer": "train", "Evaluator": "validate", "EvaluationReport": "validate"}
COMPONENT_LIMIT = {"ImportExampleGen": "raw read", "StatisticsGen": "raw read",
                   "Evaluator": "in-process scoring"}


def make_data(root: str, factor: int) -> dict[str, int]:
    """Synthetic shards at `factor`× the base; returns the videos per split."""
    from data_tools.make_synthetic_data import main as make_synthetic_data

    train_shards = factor * BASE_TRAIN_VIDEOS // TRAIN_SHARD_VIDEOS
    if not os.path.exists(os.path.join(root, "validate")):
        make_synthetic_data([
            "--output_dir", root, "--train_shards", str(train_shards),
            "--videos_per_shard", str(TRAIN_SHARD_VIDEOS), "--validate_shards", str(factor),
            "--validate_videos_per_shard", str(VALIDATE_VIDEOS_PER_FACTOR), "--seed", "1"])
    train = train_shards * TRAIN_SHARD_VIDEOS
    validate = factor * VALIDATE_VIDEOS_PER_FACTOR
    return {"train": train, "validate": validate, "all": train + validate}


def raw_read_rate(files: list[str]) -> float:
    """Videos/s of reading the records with tf.data and nothing else."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE).batch(1024)
    start, videos = time.perf_counter(), 0
    for batch in dataset:
        videos += int(batch.shape[0])
    return videos / (time.perf_counter() - start)


def gzip_rate(files: list[str], videos: int) -> float:
    """Videos/s of gzip-compressing the shards' bytes at TFRecordWriter's level."""
    start = time.perf_counter()
    for path in files:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                compressor.compress(chunk)
        compressor.flush()
    return videos / (time.perf_counter() - start)


def scoring_rate(model_dir: str, files: list[str]) -> float:
    """Videos/s of the pushed model's serving signature on serialized records, in process."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures[SERVING_DEFAULT_SIGNATURE]
    batches = list(tf.data.TFRecordDataset(files).batch(BATCH_SIZE))
    serve(examples=batches[0])  # trace and warm up
    start, videos = time.perf_counter(), 0
    for batch in batches:
        serve(examples=batch)
        videos += int(batch.shape[0])
    return videos / (time.perf_counter() - start)


def bench_scale(workdir: str, factors: tuple[int, ...], beam_workers: tuple[int, ...] = (0,)
                ) -> list[dict]:
    """One pipeline run per factor (at the two largest factors also per Beam worker setting
    and with the shards imported in place), with the limits measured on the same shards."""
    rows = []
    for factor in factors:
        data = f"{workdir}/scale_{factor}x"
        videos = make_data(data, factor)
        files = {split: sorted(glob.glob(f"{data}/{split}/*.tfrecord"))
                 for split in ("train", "validate")}
        all_files = files["train"] + files["validate"]
        raw_read_rate(all_files)  # warm the page cache, as the pipeline run will find it
        limits = {"raw read": raw_read_rate(all_files),
                  "gzip": gzip_rate(all_files, videos["all"])}
        variants = [(0, "copy")]
        if factor >= sorted(factors)[-2]:
            variants += [(workers, "copy") for workers in beam_workers if workers]
            variants.append((0, "in place"))
        for workers, examples in variants:
            root = f"{workdir}/scale_{factor}x_w{workers}_{examples.replace(' ', '_')}"
            data_root, extra = data, ["--beam_workers", str(workers)]
            if examples == "in place":
                data_root = split_layout(data, f"{root}_data")
                extra.append("--import_examples")
            run = run_pipeline(data_root, root, max(1, videos["train"] // BATCH_SIZE), extra)
            model_dir = glob.glob(f"{root}/serving_model/*")[0]
            limits["in-process scoring"] = scoring_rate(model_dir, files["validate"])
            rows.append({"section": "scale", "factor": factor, "beam_workers": workers,
                         "examples": examples, "videos": videos, "limits": dict(limits), **run})
            log(f"scale {factor}x (beam workers {workers}, examples {examples}): "
                + ", ".join(f"{k} {v:.0f} s" for k, v in run["components"].items() if v >= 1))
        shutil.rmtree(data, ignore_errors=True)
    return rows


def split_layout(data: str, root: str) -> str:
    """`root` with Split-train/ and Split-validate/ linked to data's train/ and validate/: the
    layout `--import_examples` registers in place."""
    os.makedirs(root, exist_ok=True)
    for split in ("train", "validate"):
        os.symlink(os.path.abspath(f"{data}/{split}"), f"{root}/Split-{split}")
    return root


def component_rows(rows: list[dict], examples: str = "copy") -> list[dict]:
    """Per component and factor (in-memory Beam, the shards copied by ImportExampleGen or
    imported in place): seconds, videos/s, peak RSS, limit, ratio."""
    table = []
    in_memory = [r for r in rows if r["beam_workers"] == 0 and r["examples"] == examples]
    for name in COMPONENT_INPUT:
        for row in in_memory:
            if name not in row["components"]:
                continue
            seconds = row["components"][name]
            videos = row["videos"][COMPONENT_INPUT[name]]
            limit_name = COMPONENT_LIMIT.get(name)
            limit = row["limits"].get(limit_name) if limit_name else None
            rate = videos / seconds if seconds else float("inf")
            table.append({"component": name, "factor": row["factor"], "videos": videos,
                          "seconds": seconds, "rate": rate,
                          "peak_rss_mb": row["component_peak_rss_mb"].get(name, 0.0),
                          "limit": limit_name, "limit_rate": limit,
                          "ratio": rate / limit if limit else None,
                          "gzip_rate": row["limits"]["gzip"]
                          if name == "ImportExampleGen" else None})
    return table


def growth_and_projection(table: list[dict]) -> list[dict]:
    """Per component, between the two largest factors: time growth over linear, RSS growth,
    the marginal rate and the projected seconds for the full 2018 dataset."""
    result = []
    for name in COMPONENT_INPUT:
        runs = sorted((r for r in table if r["component"] == name), key=lambda r: r["factor"])
        if len(runs) < 2:
            continue
        small, large = runs[-2], runs[-1]
        extra_seconds = large["seconds"] - small["seconds"]
        # Below a second of difference the fixed cost hides the rate: no projection.
        marginal = ((large["videos"] - small["videos"]) / extra_seconds
                    if extra_seconds >= MIN_MARGINAL_SECONDS else None)
        fixed = max(0.0, small["seconds"] - small["videos"] / marginal) if marginal else None
        full = (FULL_2018["train"] + FULL_2018["validate"] if COMPONENT_INPUT[name] == "all"
                else FULL_2018[COMPONENT_INPUT[name]])
        linear = large["videos"] / small["videos"]
        result.append({
            "component": name, "from": small["factor"], "to": large["factor"],
            "time_vs_linear": (large["seconds"] / small["seconds"]) / linear,
            "rss_growth": large["peak_rss_mb"] / max(1.0, small["peak_rss_mb"]),
            "marginal_rate": marginal, "fixed_seconds": fixed,
            # The rate once the component's fixed cost is paid, against its limit.
            "marginal_vs_limit": (marginal / large["limit_rate"]
                                  if marginal and large["limit_rate"] else None),
            "projected_seconds": fixed + full / marginal if marginal else None,
            "projected_videos": full})
    return result


def parallelism_rows(rows: list[dict]) -> list[dict]:
    """Beam-component seconds with n DirectRunner workers against in-memory, per factor."""
    beam_components = ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator")
    result = []
    for factor in sorted({r["factor"] for r in rows}):
        runs = {r["beam_workers"]: r for r in rows
                if r["factor"] == factor and r["examples"] == "copy"}
        if len(runs) < 2:
            continue
        base = sum(runs[0]["components"].get(c, 0.0) for c in beam_components)
        for workers, run in sorted(runs.items()):
            seconds = sum(run["components"].get(c, 0.0) for c in beam_components)
            result.append({"factor": factor, "beam_workers": workers, "seconds": seconds,
                           "vs_in_memory": seconds / base})
    return result


def parallelism_crossover(rows: list[dict]) -> float | None:
    """Training videos where the Beam components' time with worker processes meets the
    in-process time, on the lines through the two largest factors; None if they diverge."""
    copies = [r for r in rows if r["examples"] == "copy"]
    with_workers = {r["factor"] for r in copies if r["beam_workers"]}
    factors = sorted(with_workers & {r["factor"] for r in copies if not r["beam_workers"]})
    if len(factors) < 2:
        return None
    beam_components = ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator")

    def line(workers: int) -> tuple[float, float]:
        small, large = (next(r for r in copies if r["factor"] == f and
                             (r["beam_workers"] > 0) == (workers > 0)) for f in factors[-2:])
        seconds = [sum(r["components"].get(c, 0.0) for c in beam_components)
                   for r in (small, large)]
        slope = (seconds[1] - seconds[0]) / (large["videos"]["train"] - small["videos"]["train"])
        return slope, seconds[1] - slope * large["videos"]["train"]

    (in_process, base), (workers, workers_base) = line(0), line(1)
    if workers >= in_process:
        return None
    return (workers_base - base) / (in_process - workers)


def markdown(rows: list[dict]) -> str:
    """The scale tables: components by factor, growth and projection, Beam parallelism."""
    table = component_rows(rows)
    lines = ["## Scale (synthetic video-level data, LogisticModel, one epoch)", "",
             "| component | factor | videos | seconds | videos/s | peak RSS MB | limit "
             "(same shards) | vs limit |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        limit = (f"{r['limit']} {r['limit_rate']:,.0f}/s" if r["limit"] else "-")
        if r["gzip_rate"]:
            limit += f"; gzip {r['gzip_rate']:,.0f}/s"
        ratio = f"{r['ratio']:.3f}x" if r["ratio"] else "-"
        lines.append(f"| {r['component']} | {r['factor']}x | {r['videos']:,} | "
                     f"{r['seconds']:.1f} | {r['rate']:,.0f} | {r['peak_rss_mb']:,.0f} | "
                     f"{limit} | {ratio} |")
    lines += _growth_lines(growth_and_projection(table), "shards copied by ImportExampleGen")
    in_place = component_rows(rows, "in place")
    if in_place:
        lines += _growth_lines(growth_and_projection(in_place),
                               "shards imported in place (`--import_examples`)")
    parallel = parallelism_rows(rows)
    if parallel:
        lines += ["", "| factor | Beam workers | Beam components' seconds | vs in-memory |",
                  "|---|---|---|---|"]
        for p in parallel:
            workers = p["beam_workers"] or "in-memory"
            lines.append(f"| {p['factor']}x | {workers} | {p['seconds']:.0f} | "
                         f"{p['vs_in_memory']:.2f}x |")
        crossing = parallelism_crossover(rows)
        if crossing:
            lines += ["", f"Extrapolated from the two largest factors, worker processes "
                      f"catch up with in-process Beam near {crossing:,.0f} training videos."]
    in_place_runs = [r for r in rows if r["examples"] == "in place"]
    if in_place_runs:
        largest = max(in_place_runs, key=lambda r: r["factor"])
        copy = next(r for r in rows if r["factor"] == largest["factor"]
                    and r["examples"] == "copy" and r["beam_workers"] == 0)
        lines += ["", f"| at {copy['factor']}x | wall s | ExampleGen s | peak RSS MB per "
                  "component |", "|---|---|---|---|"]
        for run in (copy, largest):
            peaks = ", ".join(f"{name} {mb:,.0f}" for name, mb in
                              run["component_peak_rss_mb"].items() if name in COMPONENT_INPUT)
            example_gen = run["components"].get("ImportExampleGen", 0.0)
            lines.append(f"| examples {run['examples']} | {run['wall_seconds']:.0f} | "
                         f"{example_gen:.0f} | {peaks} |")
    return "\n".join(lines) + "\n"


def _growth_lines(growth: list[dict], path: str) -> list[str]:
    lines = ["", f"Growth between the two largest factors, {path}:", "",
             "| component | growth | time vs linear | peak RSS growth | marginal videos/s "
             "| marginal vs limit | fixed s | projected for the 2018 dataset |",
             "|---|---|---|---|---|---|---|---|"]
    for g in growth:
        if g["marginal_rate"]:
            rate, fixed = f"{g['marginal_rate']:,.0f}", f"{g['fixed_seconds']:.0f}"
            projection = (f"{g['projected_seconds'] / 60:,.0f} min for "
                          f"{g['projected_videos']:,} videos")
        else:
            rate = fixed = projection = "- (fixed cost only)"
        versus = f"{g['marginal_vs_limit']:.2f}x" if g["marginal_vs_limit"] else "-"
        lines.append(f"| {g['component']} | {g['from']}x → {g['to']}x | "
                     f"{g['time_vs_linear']:.2f} | {g['rss_growth']:.2f} | {rate} | {versus} "
                     f"| {fixed} | {projection} |")
    return lines
