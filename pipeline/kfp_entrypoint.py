"""The container entrypoint of the compiled Kubeflow spec: TFX's v2 executor entrypoint
(`kubeflow_v2_run_executor`), after restoring what open-source KFP's launcher does not give it.

Open-source Kubeflow Pipelines 2.x (kubeflow/pipelines `backend/src/v2`) differs from Vertex AI
Pipelines in three ways TFX's entrypoint depends on:
- its driver builds input artifacts with an empty type schema (`metadata/client.go`), and
  TFX's `_retrieve_class_path` then fails on `yaml.safe_load("")`; KFP's local runner
  (`kfp.local`) types them as its generic `system.Artifact`. The type of each such input is
  restored from the component's own input definitions, which the compiled spec passes as
  `--json_serialized_inputs_spec_args` (pipeline spec 2.1);
- it never runs `lifecycle.preCacheCheck`, where ImportExampleGen's driver resolves the span,
  version and fingerprint of the input files. When the executor finds no driver output, that
  driver runs here first;
- the launcher does not create output artifact directories; they are created here (a
  filesystem pipeline root needs them; object stores ignore them).
Custom artifact types are imported by schema title; the project's titles are registered with
TFX's title table so that they resolve in any image holding this project.

Nothing here patches TFX's files; every step is a no-op where the orchestrator already did it.
"""

from __future__ import annotations

import argparse
import os

from absl import app
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.components.example_gen.import_example_gen import executor as import_example_gen_executor
from tfx.dsl.io import fileio
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver as example_gen_driver
from tfx.utils import name_utils

from components.compat import kfp_entrypoint_flags, register_kfp_artifact_types
from components.streaming_import import StreamingImportExecutor
from pipeline.progress import component_timer

MODULE = __name__
# Executors whose compiled container has a `lifecycle.preCacheCheck` (the example_gen driver),
# by the class path the spec names them with.
EXAMPLE_GEN_EXECUTORS = tuple(name_utils.get_full_name(executor) for executor in (
    import_example_gen_executor.Executor, StreamingImportExecutor))
# The type KFP's local runner gives every artifact whose schema title its SDK does not know,
# TFX's among them (kfp/dsl/executor.py, `create_artifact_instance` falls back to dsl.Artifact).
GENERIC_KFP_TYPE = "system.Artifact"
# Schema title → import path of the project's own artifact types.
CUSTOM_ARTIFACT_TYPES = {"yt8m.HtmlReport": "components.evaluation_report.HtmlReport"}
# The task's component, for its progress lines: the compiler labels executors `<node>_executor`.
COMPONENT_VARIABLE, EXECUTOR_SUFFIX = "YT8M_TFX_COMPONENT", "_executor"


def restore_input_types(executor_input: pipeline_spec_pb2.ExecutorInput,
                        inputs_spec: pipeline_spec_pb2.ComponentInputsSpec) -> list[str]:
    """Gives every input artifact without a type the type its input definition declares;
    returns the names of the inputs changed."""
    restored = []
    for name, artifact_list in executor_input.inputs.artifacts.items():
        declared = inputs_spec.artifacts[name].artifact_type if (
            name in inputs_spec.artifacts) else None
        for artifact in artifact_list.artifacts:
            kind = artifact.type.WhichOneof("kind")
            untyped = (kind is None or not getattr(artifact.type, kind)  # e.g. instanceSchema ""
                       or artifact.type.schema_title == GENERIC_KFP_TYPE)
            if untyped and declared is not None:
                artifact.type.CopyFrom(declared)
                restored.append(name)
    return restored


def make_output_dirs(executor_input: pipeline_spec_pb2.ExecutorInput) -> None:
    for artifact_list in executor_input.outputs.artifacts.values():
        for artifact in artifact_list.artifacts:
            if artifact.uri:
                fileio.makedirs(artifact.uri)


def run(args: argparse.Namespace, beam_args: list[str]) -> None:
    executor_input = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(args.json_serialized_invocation_args, executor_input,
                      ignore_unknown_fields=True)
    inputs_spec = pipeline_spec_pb2.ComponentInputsSpec()
    if args.json_serialized_inputs_spec_args:
        json_format.Parse(args.json_serialized_inputs_spec_args, inputs_spec,
                          ignore_unknown_fields=True)
    restore_input_types(executor_input, inputs_spec)
    make_output_dirs(executor_input)
    args.json_serialized_invocation_args = json_format.MessageToJson(executor_input)
    register_kfp_artifact_types(CUSTOM_ARTIFACT_TYPES)

    with component_timer(os.environ.get(COMPONENT_VARIABLE, args.executor_class_path)):
        if (args.executor_class_path in EXAMPLE_GEN_EXECUTORS
                and not fileio.exists(executor_input.outputs.output_file)):
            example_gen_driver.main(args)  # what preCacheCheck would have run
        kubeflow_v2_run_executor.main((args, beam_args))


def rewrite_commands(spec: dict) -> int:
    """Points every executor container of a compiled spec (as a dict) that runs TFX's v2
    entrypoint at this module instead, naming its component in the container's environment
    (the spec's `env`, set on the pod); returns how many it changed."""
    changed = 0
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        command = container.get("command", [])
        if command[-1:] == [kubeflow_v2_run_executor.__name__]:
            command[-1] = MODULE
            container.setdefault("env", []).append(
                {"name": COMPONENT_VARIABLE, "value": label.removesuffix(EXECUTOR_SUFFIX)})
            changed += 1
    return changed


def main(parsed: tuple[argparse.Namespace, list[str]]) -> None:
    run(*parsed)


if __name__ == "__main__":
    # Flags exactly as TFX's entrypoint parses them; the rest are Beam's.
    app.run(main, flags_parser=kfp_entrypoint_flags)
