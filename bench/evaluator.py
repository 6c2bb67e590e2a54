"""`python -m bench.run --evaluator`: TFX's Evaluator alone, as `make run-local` configures it
(this project's EvalConfig, extractors and metrics, in-process Beam), at growing numbers of
validation videos, against in-process scoring of the same model on the same shards in the
same run.

The pipeline's Evaluator time (`make bench-scale`) also holds the launcher's work and at most
8,192 videos, where TFMA's fixed cost (building and translating the Beam graph, loading the
models) is most of it. Here the executor runs alone, after one warm-up run on one shard, so
the table separates that fixed cost from the rate per video (the marginal rate), which is what
decides the time on the 1.1 M validation videos of the 2018 dataset.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time

from bench.pipeline_child import RssSampler
from bench.pipelines import BATCH_SIZE, log, run_pipeline
from bench.scale import FULL_2018, scoring_rate
from data_tools.checks import SPLIT_DIRS

SHARD_VIDEOS = 1024
SIZES = (8_192, 32_768, 65_536)
ROUNDS = 5  # each size's best time and scoring rate
TARGET_RATIO = 0.5  # of in-process scoring (issue #33)
MEMORY_LIMIT_MB = 4096  # the Evaluator's peak memory (PSS), issue #33


def make_data(root: str, validate_videos: int) -> None:
    """Synthetic shards laid out as `--import_examples` reads them (Split-train/, …)."""
    from data_tools.make_synthetic_data import main as make_synthetic_data

    make_synthetic_data(["--output_dir", root, "--train_shards", "2",
                         "--videos_per_shard", str(SHARD_VIDEOS),
                         "--validate_shards", str(validate_videos // SHARD_VIDEOS),
                         "--validate_videos_per_shard", str(SHARD_VIDEOS), "--seed", "1"])
    for split in SPLIT_DIRS:
        os.rename(f"{root}/{split}", f"{root}/Split-{split}")


def evaluator_seconds(model_uri: str, shards: list[str], workdir: str) -> float:
    """Seconds of one run of TFX's Evaluator executor on `shards` as the validate split."""
    from tfx.components.evaluator.executor import Executor
    from tfx.components.util import examples_utils
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.schemas import write_labels_schema
    from pipeline.pipeline import (
        EXTRACTORS_MODULE,
        evaluator_decodes_labels_only,
        make_eval_config,
    )
    from pipeline.pipeline_config import PipelineConfig

    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(f"{workdir}/data/Split-validate")
    for shard in shards:
        os.symlink(shard, f"{workdir}/data/Split-validate/{os.path.basename(shard)}")
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = f"{workdir}/data", json.dumps(["validate"])
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    model = standard_artifacts.Model()
    model.uri = model_uri
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    for artifact, name in ((evaluation, "evaluation"), (blessing, "blessing")):
        artifact.uri = f"{workdir}/{name}"
        os.makedirs(artifact.uri)
    config = PipelineConfig()
    eval_config = make_eval_config(config)
    inputs = {"examples": [examples], "model": [model]}
    if evaluator_decodes_labels_only(eval_config):  # as create_pipeline's LabelsSchema node
        schema = standard_artifacts.Schema()
        schema.uri = f"{workdir}/schema"
        os.makedirs(schema.uri)
        write_labels_schema(schema.uri)
        inputs["schema"] = [schema]
    executor = Executor(BaseBeamExecutor.Context(
        beam_pipeline_args=list(config.beam_pipeline_args), tmp_dir=f"{workdir}/tmp",
        unique_id="bench"))
    start = time.perf_counter()
    executor.Do(inputs, {"evaluation": [evaluation], "blessing": [blessing]},
                {"eval_config": proto_utils.proto_to_json(eval_config),
                 "example_splits": json.dumps(["validate"]), "module_path": EXTRACTORS_MODULE})
    return time.perf_counter() - start


def bench_evaluator(workdir: str, sizes: tuple[int, ...] = SIZES) -> list[dict]:
    """The Evaluator's seconds and in-process scoring's rate at each size, same shards."""
    data = f"{workdir}/evaluator_data"
    make_data(data, max(sizes))
    run_pipeline(data, f"{workdir}/evaluator_run", max(1, 2 * SHARD_VIDEOS // BATCH_SIZE),
                 ["--import_examples"])
    model_uri = glob.glob(f"{workdir}/evaluator_run/pipeline_root/Trainer/model/*")[0]
    model_dir = glob.glob(f"{workdir}/evaluator_run/serving_model/*")[0]
    shards = sorted(glob.glob(f"{data}/Split-validate/*"))
    evaluator_seconds(model_uri, shards[:1], f"{workdir}/evaluator_warmup")
    best: dict[int, dict] = {}
    for round_ in range(ROUNDS):  # sizes alternate, so a slow spell hits them all
        for videos in sizes:
            these = shards[:videos // SHARD_VIDEOS]
            # Memory is sampled in the first round only: the sampler reads /proc for a few
            # milliseconds 4 times a second, in this process, beside the Evaluator.
            sampler = RssSampler() if round_ == 0 else None
            if sampler:
                sampler.start()
            seconds = evaluator_seconds(model_uri, these, f"{workdir}/evaluator_{videos}")
            if sampler:
                sampler.stop()
            scoring = scoring_rate(model_dir, these)
            log(f"evaluator {videos} videos: {seconds:.1f} s, {videos / seconds:,.0f}/s vs "
                f"in-process scoring {scoring:,.0f}/s"
                + (f", peak {sampler.peak():,.0f} MB" if sampler else ""))
            if sampler:
                best[videos] = {"section": "evaluator", "videos": videos, "shards": len(these),
                                "seconds": seconds, "scoring_rate": scoring,
                                "peak_mb": sampler.peak()}
            row = best[videos]
            row["seconds"] = min(row["seconds"], seconds)
            row["scoring_rate"] = max(row["scoring_rate"], scoring)
    rows = [best[videos] for videos in sizes]
    for row in rows:
        row["rate"] = row["videos"] / row["seconds"]
        row["ratio"] = row["rate"] / row["scoring_rate"]
    shutil.rmtree(data, ignore_errors=True)
    return rows


def marginal_rows(rows: list[dict]) -> list[dict]:
    """Between consecutive sizes: the rate of the added videos, against in-process scoring
    of the larger size, and the fixed cost it implies."""
    result = []
    for small, large in zip(rows, rows[1:], strict=False):
        rate = (large["videos"] - small["videos"]) / (large["seconds"] - small["seconds"])
        result.append({"from": small["videos"], "to": large["videos"], "rate": rate,
                       "ratio": rate / large["scoring_rate"],
                       "fixed_seconds": small["seconds"] - small["videos"] / rate})
    return result


def markdown(rows: list[dict]) -> str:
    lines = ["## Evaluator alone (synthetic video-level data, LogisticModel, shards of "
             f"{SHARD_VIDEOS:,} videos)", "",
             f"Each size ran {ROUNDS} times, sizes alternating: its best time, in-process "
             "scoring's best rate on the same shards after each run, and the memory of its "
             "first run (sampled in that round only).", "",
             "| validation videos | shards | Evaluator s | videos/s | in-process scoring "
             f"videos/s | vs scoring | peak memory (PSS; this process, TF loaded; target ≤ "
             f"{MEMORY_LIMIT_MB:,} MB) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['videos']:,} | {r['shards']} | {r['seconds']:.1f} | "
                     f"{r['rate']:,.0f} | {r['scoring_rate']:,.0f} | {r['ratio']:.2f}x | "
                     f"{r['peak_mb']:,.0f} MB |")
    lines += ["", f"| added videos | marginal videos/s | vs scoring (target ≥ {TARGET_RATIO}x) "
              "| fixed s | projected for the 2018 validate split |", "|---|---|---|---|---|"]
    for m in marginal_rows(rows):
        verdict = "met" if m["ratio"] >= TARGET_RATIO else "missed"
        minutes = (m["fixed_seconds"] + FULL_2018["validate"] / m["rate"]) / 60
        lines.append(f"| {m['from']:,} → {m['to']:,} | {m['rate']:,.0f} | {m['ratio']:.2f}x: "
                     f"{verdict} | {m['fixed_seconds']:.1f} | {minutes:,.0f} min for "
                     f"{FULL_2018['validate']:,} videos |")
    return "\n".join(lines) + "\n"
