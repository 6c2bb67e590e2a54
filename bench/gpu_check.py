"""`make gpu-check`: on a host with an NVIDIA GPU, trains FrameLevelLogisticModel, NetVLADModel
and LstmModel on the bundled real frame-level shards on the GPU (50 steps) and on the CPU
(5 steps: a CPU step of the LSTM takes seconds), each in a fresh process, and writes their
step times beside the Trainer's device line and the GPU's name (bench/gpu.md, bench/gpu.json).
Where TensorFlow sees no GPU it stops at once: one line, exit 2.

    python -m bench.gpu_check [--output_dir bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from bench.pipelines import BATCH_SIZE, PROJECT_ROOT, log

MODELS = ("FrameLevelLogisticModel", "NetVLADModel", "LstmModel")
STEPS = {"GPU": 50, "CPU": 5}
FRAMES = os.path.join(PROJECT_ROOT, "data", "sample", "frame")
HERE = os.path.dirname(os.path.abspath(__file__))


def _timed(model: str, steps: int) -> None:
    """In the child process: the device line and `steps` timed steps of `model`, as JSON."""
    from bench.training import training_step_row
    from trainer_module.distribution import describe_devices, distribution_strategy

    devices = describe_devices(distribution_strategy("none"), "none")
    row = training_step_row(model, "real frames", FRAMES, steps)
    print(json.dumps({**row, "devices": devices}))


def _run(model: str, device: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if device == "CPU":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    result = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--child", model,
                             "--steps", str(STEPS[device])], capture_output=True, text=True,
                            env=env, cwd=PROJECT_ROOT)
    if result.returncode:
        raise RuntimeError(f"{model} on {device} failed: {result.stderr[-2000:]}")
    return {**json.loads(result.stdout.splitlines()[-1]), "device": device}


def gpu_names() -> list[str]:
    """The GPUs `nvidia-smi` names ([] without a driver)."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                capture_output=True, text=True)
    except FileNotFoundError:
        return []
    return result.stdout.split("\n")[:-1] if result.returncode == 0 else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=HERE)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _timed(args.child, args.steps)
        return 0
    import tensorflow as tf

    names = gpu_names()
    if not tf.config.list_physical_devices("GPU"):
        print(f"error: make gpu-check needs an NVIDIA GPU that TensorFlow sees; here it sees "
              f"none (nvidia-smi: {', '.join(names) or 'no driver'}; CUDA libraries and "
              "GPUS=: docs/platforms.md#gpus)", file=sys.stderr)
        return 2
    rows = []
    for model in MODELS:
        for device in ("GPU", "CPU"):
            rows.append(_run(model, device))
            log(f"{model} on {device}: {rows[-1]['step_ms']:.0f} ms/step ({rows[-1]['devices']})")
    lines = [f"# GPU check: {', '.join(names)}", "",
             f"Batch {BATCH_SIZE}, the bundled real frame-level shards; GPU {STEPS['GPU']} "
             f"steps, CPU {STEPS['CPU']} (after one to trace).", "",
             "| model | GPU ms/step | CPU ms/step | GPU vs CPU | the Trainer's device line |",
             "|---|---|---|---|---|"]
    for model in MODELS:
        gpu, cpu = (next(r for r in rows if r["name"].startswith(model) and r["device"] == d)
                    for d in ("GPU", "CPU"))
        lines.append(f"| {model} | {gpu['step_ms']:.1f} | {cpu['step_ms']:.1f} | "
                     f"{cpu['step_ms'] / gpu['step_ms']:.1f}x | {gpu['devices']} |")
    with open(os.path.join(args.output_dir, "gpu.json"), "w") as f:
        json.dump({"gpus": names, "rows": rows}, f, indent=1)
    with open(os.path.join(args.output_dir, "gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
