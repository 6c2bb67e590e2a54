"""Compiles the pipeline for Kubeflow Pipelines v2 (`make compile-kfp`) and submits it
(`make submit-kfp`). The same `create_pipeline` as the local runner; only configuration
differs: the image, where data and outputs live, the Beam runner, the Trainer's distribution
strategy and per-component resources.

    python -m pipeline.kubeflow_runner compile --image=REGISTRY/yt8m-tfx:0.1.0 \
        --pipeline_root=gs://BUCKET/yt8m --data_root=gs://BUCKET/yt8m/2018/video \
        --beam_runner=dataflow --beam_arg=--project=PROJECT --beam_arg=--region=REGION
    python -m pipeline.kubeflow_runner submit --host=https://HOST/pipeline \
        --package=build/kfp/pipeline.yaml --pipeline_root=gs://BUCKET/yt8m
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import sys

from data_tools.checks import PreflightError
from pipeline.flags import (
    add_blessing_flags,
    add_run_flags,
    add_training_flags,
    parse_args_with_preset,
    pipeline_config_of,
    training_config_from_args,
)
from pipeline.pipeline_config import BEAM_RUNNERS, PIPELINE_NAME, PipelineConfig, VertexTraining
from trainer_module.features import FeatureSpecError

DEFAULT_PACKAGE = os.path.join("build", "kfp", "pipeline.yaml")
PROJECT = "yt8m-tfx"


def project_version() -> str:
    """This project's version (pyproject.toml): from its installed metadata (the release
    image, a native .venv) or, where the work tree is on PYTHONPATH uninstalled (the
    environment image), from the tree's pyproject.toml."""
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        import tomllib

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "pyproject.toml"), "rb") as f:
            return tomllib.load(f)["project"]["version"]


# The image `make image` builds: this project's name and version.
DEFAULT_IMAGE = f"{PROJECT}:{project_version()}"


@dataclasses.dataclass(frozen=True)
class Resources:
    """A component pod's CPU and memory (limits = requests) and GPUs."""

    cpu: float
    memory_gb: float
    gpus: int = 0


# Each task's pod, by component id (pipeline.create_pipeline's ids, whichever class runs the
# step): sized for the full video-level dataset (31 GB) with Beam on DirectRunner inside the
# pod; with Dataflow/Flink/Spark the Beam components' pods only submit the job. A component
# missing here is refused at compile time. Importers (ImportExamples) run no pod.
COMPONENT_RESOURCES = {
    "ImportExampleGen": Resources(4, 16), "StatisticsGen": Resources(4, 16),
    "SchemaGen": Resources(1, 4),
    "ExampleValidator": Resources(1, 4), "StopOnAnomalies": Resources(1, 2),
    "Transform": Resources(4, 16), "Tuner": Resources(8, 32), "WarmStartModel": Resources(1, 2),
    "Trainer": Resources(8, 32), "BaselineModel": Resources(1, 2),
    "EvaluationSchema": Resources(1, 2), "Evaluator": Resources(4, 16),
    "EvaluationReport": Resources(2, 8),
    "Pusher": Resources(1, 4), "BatchPredict": Resources(4, 16),
}
TRAINER_ID = "Trainer"


def beam_pipeline_args(runner: str, image: str, pipeline_root: str,
                       extra: list[str]) -> tuple[str, ...]:
    """The Beam arguments of environment `runner`, then the user's `extra` ones."""
    preset = [arg.format(image=image, pipeline_root=pipeline_root) for arg in BEAM_RUNNERS[runner]]
    return (*preset, *extra)


def resource_spec(resources: Resources, gpu_type: str):
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=resources.cpu, cpu_request=resources.cpu,
        memory_limit=resources.memory_gb, memory_request=resources.memory_gb)
    if resources.gpus:
        spec.accelerator.type = gpu_type
        spec.accelerator.count = resources.gpus
    return spec


def build_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command-line parser and its `compile` subparser."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    compile_ = commands.add_parser("compile", help="write the KFP v2 pipeline spec (YAML)")
    where = compile_.add_argument_group("cluster")
    where.add_argument("--image", default=DEFAULT_IMAGE,
                       help="the pipeline image (make image), holding this project")
    where.add_argument("--gpu_image",
                       help="the Trainer's image when --trainer_gpus: the same project on the "
                            "CUDA environment (make image-cuda; default: <image>-cuda)")
    add_run_flags(compile_)
    where.add_argument("--beam_runner", choices=sorted(BEAM_RUNNERS), default="direct")
    where.add_argument("--beam_arg", action="append", default=[],
                       help="an extra Beam argument (repeatable), e.g. --beam_arg=--project=P")
    where.add_argument("--trainer_gpus", type=int, default=0)
    where.add_argument("--trainer_workers", type=int, default=1,
                       help="train on this many workers (multi_worker_mirrored) as a Vertex AI "
                            "custom job, which gives each its TF_CONFIG; needs "
                            "--vertex_project and --vertex_region")
    where.add_argument("--vertex_project", help="the Google Cloud project of that job")
    where.add_argument("--vertex_region", help="its region, e.g. us-central1")
    where.add_argument("--trainer_machine_type", default=VertexTraining.machine_type,
                       help="each worker's Vertex machine type")
    where.add_argument("--gpu_type", default="nvidia.com/gpu",
                       help="accelerator type of the Trainer's GPUs")
    where.add_argument("--output", default=DEFAULT_PACKAGE, help="the .yaml to write")
    add_training_flags(compile_)
    add_blessing_flags(compile_)

    submit = commands.add_parser("submit", help="start a run of a compiled spec")
    submit.add_argument("--host", required=True, help="the KFP API endpoint")
    submit.add_argument("--package", default=DEFAULT_PACKAGE)
    submit.add_argument("--pipeline_root", help="overrides the compiled pipeline root")
    submit.add_argument("--experiment", default=PIPELINE_NAME)
    submit.add_argument("--run_name")
    submit.add_argument("--namespace")
    return parser, compile_


def pipeline_config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig for the cluster; paths are used as given (object storage URIs)."""
    if not args.output.endswith((".yaml", ".yml")):
        raise PreflightError(f"--output must be a .yaml file (KFP rejects JSON), got {args.output}")
    root = args.pipeline_root.rstrip("/")
    training = training_config_from_args(args, f"{root}/train_dir/{args.model}")
    if args.trainer_gpus < 0:
        raise PreflightError(f"--trainer_gpus must be 0 or more, got {args.trainer_gpus}")
    if args.trainer_gpus:
        # Use them all, and stop before training if the pod sees fewer (never a CPU run).
        training = dataclasses.replace(
            training, require_gpus=args.trainer_gpus,
            distribution="mirrored" if training.distribution == "none"
            else training.distribution)
    vertex_training = None
    if args.trainer_workers < 1:
        raise PreflightError(f"--trainer_workers must be positive, got {args.trainer_workers}")
    if args.trainer_workers > 1:
        if not (args.vertex_project and args.vertex_region):
            raise PreflightError(
                f"--trainer_workers {args.trainer_workers} needs --vertex_project and "
                "--vertex_region: the workers run as a Vertex AI custom job, which sets "
                "their TF_CONFIG (a KFP pod runs one worker)")
        if training.distribution not in ("none", "multi_worker_mirrored"):
            raise PreflightError(f"--trainer_workers {args.trainer_workers} trains with "
                                 f"multi_worker_mirrored, not --distribution "
                                 f"{training.distribution}")
        training = dataclasses.replace(training, distribution="multi_worker_mirrored")
        vertex_training = VertexTraining(args.vertex_project, args.vertex_region, args.image,
                                         args.trainer_workers, args.trainer_machine_type)
    return pipeline_config_of(
        args, training, data_root=args.data_root, pipeline_root=root,
        serving_model_dir=args.serving_model_dir or f"{root}/serving_model",
        predict_data_pattern=args.predict_data_pattern,
        beam_pipeline_args=beam_pipeline_args(args.beam_runner, args.image, root,
                                              args.beam_arg),
        vertex_training=vertex_training)


def gpu_image_of(image: str) -> str:
    """The CUDA variant of release image `image` (`make image-cuda` tags it so)."""
    return f"{image}-cuda"


def compile_pipeline(config: PipelineConfig, image: str, output: str, trainer_gpus: int = 0,
                     gpu_type: str = "nvidia.com/gpu", gpu_image: str | None = None) -> str:
    """Writes the KFP v2 pipeline spec of `create_pipeline(config)` to `output` (.yaml): every
    task sized by COMPONENT_RESOURCES; with `trainer_gpus`, the Trainer's pod asks for them
    and runs `gpu_image`."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(config)
    unsized = [component.id for component in pipeline.components
               if not isinstance(component, tfx.dsl.Importer)
               and component.id not in COMPONENT_RESOURCES]
    if unsized:
        raise PreflightError(f"component {', '.join(unsized)} has no entry in "
                             "kubeflow_runner.COMPONENT_RESOURCES: its pod would be unsized")
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output))
    runner.run(pipeline)
    resources = dict(COMPONENT_RESOURCES)
    resources[TRAINER_ID] = dataclasses.replace(resources[TRAINER_ID], gpus=trainer_gpus)
    adapt_spec(output, {task_id: resource_spec(value, gpu_type)
                        for task_id, value in resources.items()},
               {TRAINER_ID: gpu_image or gpu_image_of(image)} if trainer_gpus else {})
    return output


def adapt_spec(path: str, task_resources: dict, task_images: dict[str, str]) -> None:
    """Makes the compiled spec run on open-source KFP as on Vertex AI: executors start
    through `pipeline.kfp_entrypoint`, and the nodes that read what is served are never
    taken from KFP's cache. Each task's container gets its `task_resources` (ResourceSpec),
    set here because TFX's compiler drops a FileBasedExampleGen's platform_config (tfx
    orchestration/kubeflow/v2/step_builder.py, `_build_file_based_example_gen_spec`), and the
    tasks of `task_images` run those images."""
    import yaml
    from google.protobuf import json_format

    from pipeline.kfp_entrypoint import rewrite_commands
    from pipeline.pipeline import UNCACHED_NODE_IDS

    with open(path) as f:
        spec = yaml.safe_load(f)
    rewrite_commands(spec)
    for task_id, task in spec["root"]["dag"]["tasks"].items():
        if task_id in UNCACHED_NODE_IDS:
            task["cachingOptions"] = {"enableCache": False}
        component = spec["components"][task["componentRef"]["name"]]
        container = spec["deploymentSpec"]["executors"][component["executorLabel"]].get(
            "container")
        if container is None:  # an importer: no pod
            continue
        container["resources"] = json_format.MessageToDict(task_resources[task_id])
        if task_id in task_images:
            container["image"] = task_images[task_id]
    with open(path, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)


def submit_pipeline(host: str, package: str, pipeline_root: str | None = None,
                    experiment: str = PIPELINE_NAME, run_name: str | None = None,
                    namespace: str | None = None):
    """Starts a run of the compiled `package` with kfp.Client; returns the run's id."""
    import kfp

    client = kfp.Client(host=host, namespace=namespace)
    result = client.create_run_from_pipeline_package(
        package, arguments={}, run_name=run_name, experiment_name=experiment,
        namespace=namespace, pipeline_root=pipeline_root)
    return result.run_id


def main(argv: list[str] | None = None) -> int:
    parser, compile_parser = build_parsers()
    args = parse_args_with_preset(parser, argv, compile_parser)
    try:
        if args.command == "compile":
            config = pipeline_config_from_args(args)
            gpu_image = args.gpu_image or gpu_image_of(args.image)
            compile_pipeline(config, args.image, args.output, args.trainer_gpus, args.gpu_type,
                             gpu_image)
            gpus = (f", Trainer on {args.trainer_gpus} GPU(s) in {gpu_image}"
                    if args.trainer_gpus else "")
            print(f"wrote {args.output} (image {args.image}{gpus}, pipeline root "
                  f"{config.pipeline_root})")
        else:
            if not os.path.isfile(args.package):
                raise PreflightError(f"--package {args.package} does not exist; run "
                                     "`make compile-kfp` first")
            run_id = submit_pipeline(args.host, args.package, args.pipeline_root,
                                     args.experiment, args.run_name, args.namespace)
            print(f"submitted run {run_id} to {args.host} (experiment {args.experiment})")
    except (PreflightError, FeatureSpecError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
