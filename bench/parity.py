"""`make parity`: this project beside the starter code itself (google/youtube-8m), at the
starter's own settings, on the same shards: training examples/s, GAP, mAP, Hit@1 and PERR.

Nothing of the starter is in this repository: point `--starter_dir` at a checkout of it and
`--starter_python` at a Python with TensorFlow 1.15 (bench/README.md has the setup commands).
Each side trains alone, one after the other, in its own process:

- the starter: `train.py --batch_size=1024 --max_steps=STEPS` with its defaults (Adam,
  learning rate 0.01, clipping 1.0), exporting at the last step (it saves a checkpoint only
  when it exports: step 10, then every `--export_model_steps`), then `eval.py --run_once` on
  the validate shards; its examples/s is the mean of the per-step rates it logs for its last
  50 steps (`Examples/sec:`).
- this project: the Trainer's own `train_and_export` with the same settings, then the
  exported SavedModel scored by `evaluation.offline_eval` on the same validate shards; its
  examples/s is the mean of batch size / step time over the same last 50 steps.

    python -m bench.parity --starter_dir=../youtube-8m --starter_python=~/tf115/bin/python \
        --data_root=data/sample/video [--steps=300] [--models=LogisticModel,MoeModel]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from bench.pipelines import HERE, PROJECT_ROOT, SAMPLE, STARTER_BATCH_SIZE, log
from trainer_module.training_config import MIXED_PRECISIONS

STARTER_EPOCHS = 10_000
RATE_STEPS = 50  # examples/s is the mean over this many last steps, on both sides
# The models compared, each with its features (the starter's flags) and data level.
MODELS = {
    "LogisticModel": ("mean_rgb,mean_audio", "video"),
    "MoeModel": ("mean_rgb,mean_audio", "video"),
    "FrameLevelLogisticModel": ("rgb,audio", "frame"),
}
FEATURE_SIZES = "1024,128"
GAP_TOLERANCE = 0.003  # ours must reach the starter's GAP less this
METRICS = ("gap", "map", "hit_at_one", "perr")
_STARTER_EVAL = re.compile(
    r"Avg_Hit@1: (?P<hit_at_one>[\d.]+) \| Avg_PERR: (?P<perr>[\d.]+) \| "
    r"MAP: (?P<map>[\d.]+) \| GAP: (?P<gap>[\d.]+)")
_STARTER_RATE = re.compile(r"training step (\d+) \| Loss: [\d.na]+ Examples/sec: ([\d.]+)")


# What importing TensorFlow 2 sets in this process's environment; TF 1.15 would read
# TF2_BEHAVIOR=1 as "run eagerly", which the starter's tf.train.Supervisor refuses.
_TF2_ENVIRONMENT = ("TF2_BEHAVIOR", "TPU_ML_PLATFORM", "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK")


def run_logged(command: list[str], log_path: str, cwd: str | None = None) -> None:
    """Runs `command` in this process's environment as it was before TensorFlow was imported,
    its output into `log_path`; raises with the output's tail if it fails."""
    env = {key: value for key, value in os.environ.items() if key not in _TF2_ENVIRONMENT}
    with open(log_path, "w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, check=False)
    if result.returncode:
        with open(log_path) as f:
            tail = "\n".join(f.read().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command[:2])} exited {result.returncode} "
                           f"(log {log_path}):\n{tail}")


def run_starter(args, model: str, data_root: str, workdir: str) -> dict:
    """Trains and evaluates `model` with the starter code; its metrics and examples/s."""
    features, level = MODELS[model]
    train_dir = os.path.join(workdir, f"starter_{model}")
    level_flags = ["--frame_features"] if level == "frame" else []
    common = [f"--feature_names={features}", f"--feature_sizes={FEATURE_SIZES}", *level_flags]
    start = time.perf_counter()
    run_logged(
        [args.starter_python, "train.py", f"--train_data_pattern={data_root}/train/*.tfrecord",
         f"--train_dir={train_dir}", f"--model={model}", *common,
         f"--batch_size={STARTER_BATCH_SIZE}", f"--max_steps={args.steps}",
         # It saves only when it exports: at step 10, then after this many more steps.
         f"--export_model_steps={args.steps - 10}", "--start_new_model",
         # Its default, 5 epochs, would end a small training set before STEPS.
         f"--num_epochs={STARTER_EPOCHS}"],
        os.path.join(workdir, f"starter_{model}_train.log"), cwd=args.starter_dir)
    train_seconds = time.perf_counter() - start
    run_logged(
        [args.starter_python, "eval.py", f"--eval_data_pattern={data_root}/validate/*.tfrecord",
         f"--train_dir={train_dir}", "--run_once", f"--batch_size={STARTER_BATCH_SIZE}"],
        os.path.join(workdir, f"starter_{model}_eval.log"), cwd=args.starter_dir)
    return {**starter_results(workdir, model), "train_seconds": train_seconds}


def starter_results(workdir: str, model: str) -> dict:
    """The starter's metrics (its eval.py's last line) and examples/s (the mean of the rates
    its train.py logged for its last RATE_STEPS steps), read from its logs in `workdir`."""
    with open(os.path.join(workdir, f"starter_{model}_train.log")) as f:
        # Each step is logged twice (tf.logging and absl): by step number.
        rates = list({int(step): float(rate) for step, rate in _STARTER_RATE.findall(f.read())
                      }.values())
    if len(rates) < RATE_STEPS:
        raise RuntimeError(f"the starter logged {len(rates)} training steps for {model}")
    with open(os.path.join(workdir, f"starter_{model}_eval.log")) as f:
        found = list(_STARTER_EVAL.finditer(f.read()))
    if not found:
        raise RuntimeError(f"no metrics in the starter's eval.py output for {model}")
    metrics = {name: float(value) for name, value in found[-1].groupdict().items()}
    return {**metrics, "examples_per_second": sum(rates[-RATE_STEPS:]) / RATE_STEPS}


def run_ours(model: str, data_root: str, steps: int, workdir: str,
             mixed_precision: str = "none") -> dict:
    """Trains `model` as the Trainer does at the starter's settings, exports it and scores
    the SavedModel on the validate shards (in this process: call it in a fresh one); for a
    video-level model also its matmul floor (bench.training.matmul_floor_ms)."""
    from bench.training import matmul_floor_ms, step_timer
    from evaluation.offline_eval import evaluate_saved_model
    from trainer_module.train import build_configured_model, train_and_export
    from trainer_module.training_config import TrainingConfig

    features, level = MODELS[model]
    config = TrainingConfig(model=model, feature_names=features, feature_sizes=FEATURE_SIZES,
                            batch_size=STARTER_BATCH_SIZE, mixed_precision=mixed_precision)
    timer, step_times = step_timer()
    export_dir = os.path.join(workdir, f"ours_{model}")
    start = time.perf_counter()
    train_and_export(config, sorted(glob.glob(f"{data_root}/train/*.tfrecord")),
                     sorted(glob.glob(f"{data_root}/validate/*.tfrecord"))[:1], steps,
                     export_dir, os.path.join(workdir, f"ours_{model}_logs"),
                     eval_steps=1, extra_callbacks=[timer])
    train_seconds = time.perf_counter() - start
    metrics = evaluate_saved_model(export_dir, f"{data_root}/validate/*.tfrecord",
                                   STARTER_BATCH_SIZE)
    step_seconds = step_times[-RATE_STEPS:]
    floor = {}
    if level == "video":
        floor_ms = matmul_floor_ms(build_configured_model(config), STARTER_BATCH_SIZE)
        floor = {"floor_ms": floor_ms,
                 "step_vs_floor": sum(step_seconds) / len(step_seconds) * 1000 / floor_ms}
    return {**{name: metrics[name] for name in METRICS},
            "examples_per_second": sum(STARTER_BATCH_SIZE / seconds
                                       for seconds in step_seconds) / RATE_STEPS,
            # Keras traces (and with XLA compiles) the step in the first: not in the rate.
            "first_step_seconds": step_times[0], **floor,
            "train_seconds": train_seconds, "num_examples": metrics["num_examples"]}


def _ours_in_fresh_process(model: str, data_root: str, steps: int, workdir: str,
                           mixed_precision: str) -> dict:
    result = os.path.join(workdir, f"ours_{model}.json")
    run_logged([sys.executable, "-m", "bench.parity", "--ours", model, f"--data_root={data_root}",
                 f"--steps={steps}", f"--workdir={workdir}",
                 f"--mixed_precision={mixed_precision}"],
                os.path.join(workdir, f"ours_{model}.log"), cwd=PROJECT_ROOT)
    with open(result) as f:
        return json.load(f)


def frame_data_root(video_root: str, workdir: str) -> str:
    """Frame-level shards of real lengths made from the video-level shards (data_tools
    .make_frame_data, seeded): the starter and this project read the same ones."""
    from data_tools.make_frame_data import main as make_frame_data

    root = os.path.join(workdir, "frames")
    for split in ("train", "validate"):
        if make_frame_data([f"--input_pattern={video_root}/{split}/*.tfrecord",
                            f"--output_dir={root}/{split}"]):
            raise RuntimeError(f"could not make frame-level shards from {video_root}/{split}")
    return root


def format_table(rows: list[dict]) -> str:
    """Both sides of every model, at batch STARTER_BATCH_SIZE: the run's date, steps, data,
    this project's precision, its step time against its matmul floor and its first step."""
    lines = ["| model | date, steps, data | side | examples/s | vs starter | step / matmul floor "
             f"| first step | GAP@20 | mAP | Hit@1 | PERR | GAP ≥ starter − {GAP_TOLERANCE} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        starter, ours = row["starter"], row["ours"]
        for side, values in (("starter", starter), (f"this project, {row['precision']}", ours)):
            is_ours = values is ours
            speed = f"**{ours['examples_per_second'] / starter['examples_per_second']:.2f}x**" \
                if is_ours else "-"
            met = ("yes" if ours["gap"] >= starter["gap"] - GAP_TOLERANCE else "**no**") \
                if is_ours else ""
            run = (f"{row['date']}, {row['steps']} steps, {row['data']}" if not is_ours
                   else "")
            floor = (f"{values['step_vs_floor']:.2f}x of {values['floor_ms']:,.0f} ms"
                     if "floor_ms" in values else "-")
            first = f"{values['first_step_seconds']:.1f} s" if "first_step_seconds" in values \
                else "-"
            lines.append(
                f"| {row['model']} | {run} | {side} | {values['examples_per_second']:,.0f} | "
                f"{speed} | {floor} | {first} | "
                f"{values['gap']:.4f} | {values['map']:.4f} | {values['hit_at_one']:.4f} | "
                f"{values['perr']:.4f} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starter_dir", help="a checkout of google/youtube-8m")
    parser.add_argument("--starter_python", help="a Python with tensorflow==1.15")
    parser.add_argument("--data_root", default=SAMPLE,
                        help="video-level train/ and validate/ shards")
    parser.add_argument("--frame_data_root",
                        help="frame-level train/ and validate/ shards (default: made at real "
                             "lengths from the bundled sample's videos)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each side")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--workdir", help="logs and models (default: a temporary folder)")
    parser.add_argument("--mixed_precision", default="none", choices=MIXED_PRECISIONS,
                        help="this project's side computes in this precision")
    parser.add_argument("--ours", help=argparse.SUPPRESS)  # child: train one model of ours
    args = parser.parse_args(argv)
    if args.ours:
        result = run_ours(args.ours, args.data_root, args.steps, args.workdir,
                          args.mixed_precision)
        with open(os.path.join(args.workdir, f"ours_{args.ours}.json"), "w") as f:
            json.dump(result, f)
        return 0
    problems = [f"--{flag} is required" for flag in ("starter_dir", "starter_python")
                if not getattr(args, flag)]
    if args.starter_dir and not os.path.exists(os.path.join(args.starter_dir, "train.py")):
        problems.append(f"--starter_dir {args.starter_dir} has no train.py")
    unknown = sorted(set(args.models.split(",")) - set(MODELS))
    if unknown:
        problems.append(f"--models: unknown {', '.join(unknown)}; choose from "
                        f"{', '.join(MODELS)}")
    if args.steps <= RATE_STEPS + 10:
        problems.append(f"--steps must be more than {RATE_STEPS + 10}")
    if problems:
        print(f"error: {'; '.join(problems)} (bench/README.md: make parity)", file=sys.stderr)
        return 2
    args.starter_dir = os.path.abspath(args.starter_dir)
    data_root = os.path.abspath(args.data_root)
    workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="parity_"))
    os.makedirs(workdir, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        root = data_root
        if MODELS[model][1] == "frame":
            root = os.path.abspath(args.frame_data_root or frame_data_root(SAMPLE, workdir))
        log(f"parity {model}: the starter code")
        starter = run_starter(args, model, root, workdir)
        log(f"parity {model}: this project")
        ours = _ours_in_fresh_process(model, root, args.steps, workdir, args.mixed_precision)
        rows.append({"model": model, "precision": _precision(args.mixed_precision),
                     "date": str(datetime.date.today()), "steps": args.steps,
                     "data": _described(root), "starter": starter, "ours": ours})
        log(f"parity {model}: GAP {starter['gap']:.3f} vs {ours['gap']:.4f}, "
            f"{ours['examples_per_second'] / starter['examples_per_second']:.2f}x examples/s")
    table = format_table(merge_results(rows))
    print(table)
    print(f"logs and models in {workdir}")
    return 0


def merge_results(rows: list[dict]) -> list[dict]:
    """bench/parity.json with `rows` in place of the earlier rows of the same models and
    precisions (a run of some models keeps the others' results); also writes
    bench/parity.md."""
    path = os.path.join(HERE, "parity.json")
    earlier = []
    if os.path.exists(path):
        with open(path) as f:
            earlier = json.load(f)["rows"]
    merged = {(row["model"], row["precision"]): row for row in [*earlier, *rows]}
    ordered = [merged[model, precision] for model in MODELS
               for precision in map(_precision, MIXED_PRECISIONS) if (model, precision) in merged]
    with open(path, "w") as f:
        json.dump({"batch_size": STARTER_BATCH_SIZE, "rows": ordered}, f, indent=2)
    with open(os.path.join(HERE, "parity.md"), "w") as f:
        f.write(format_table(ordered) + "\n")
    return ordered


def _precision(mixed_precision: str) -> str:
    """A --mixed_precision as the table names it."""
    return "float32" if mixed_precision == "none" else mixed_precision


def _described(data_root: str) -> str:
    """A data root as the table names it: its train and validate video counts."""
    import tensorflow as tf

    counts = {split: sum(1 for path in tf.io.gfile.glob(f"{data_root}/{split}/*.tfrecord")
                         for _ in tf.data.TFRecordDataset(path))
              for split in ("train", "validate")}
    return f"{counts['train']:,} train / {counts['validate']:,} validate videos"


if __name__ == "__main__":
    sys.exit(main())
