"""Runs a compiled KFP v2 pipeline spec task by task, as a KFP backend would (test code).

No KFP backend runs here (no cluster), so this stands in for one and follows what
kubeflow/pipelines' v2 backend does (backend/src/v2/driver/driver.go, launcher,
metadata/client.go; Vertex AI Pipelines as documented for TFX's `KubeflowV2DagRunner`):
- the API server accepts only `schemaVersion: 2.1.0` (backend/src/apiserver/template/
  v2_template.go), and the Argo compiler refuses resolver and custom-job executors
  (backend/src/v2/compiler/argocompiler/dag.go, container.go);
- the driver resolves each task's inputs: parameters from `runtimeValue.constant`, artifacts
  from the producer task's outputs, and builds the `ExecutorInput` (kfp's
  `pipeline_spec_pb2`) whose JSON replaces `{{$}}` in the container's args; output artifact
  URIs are laid out under the pipeline root; `outputs.outputFile` is where the executor
  writes its `ExecutorOutput`;
- open-source KFP hands input artifacts over with an empty type schema (metadata/client.go
  builds the RuntimeArtifact from MLMD without the type) and never runs
  `lifecycle.preCacheCheck`; Vertex AI gives typed inputs and runs preCacheCheck first;
- the launcher runs the container's `command` + `args` in the executor's `image`, with its
  `env`, and records
  the output artifacts, with the metadata the executor wrote in its `ExecutorOutput`, for
  downstream tasks;
- a task starts once every task it depends on (`dependentTasks`, the producers of its input
  artifacts) has finished, concurrently with other ready tasks;
- importer tasks register their artifact (URI and metadata) without running a container;
- a task whose `cachingOptions.enableCache` is set reuses the outputs of an earlier run whose
  cache key matches (backend/src/v2/cacheutils/cache.go `GenerateCacheKey`: the input
  parameters and artifact names, the output artifact types, and the container's image,
  command and args).
Each task runs in a new container of the spec's image (`tests/containers.py`), with the
pipeline root and data bound at their own paths, as a pod's volumes. Not simulated: object
storage (the pipeline root is a local folder), copying input artifacts into the pod (a
mounted root needs no copy), retries, and the Go launcher itself.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import subprocess

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tests import containers

OPEN_SOURCE_KFP, VERTEX = "open-source KFP", "Vertex AI"
# Tasks whose inputs are ready run at once, as on a cluster; here one per CPU.
PARALLEL_TASKS = os.cpu_count() or 1


class SpecRefused(Exception):
    """The backend would refuse the spec at run creation."""


@dataclasses.dataclass
class TaskRun:
    name: str
    outputs: dict[str, pipeline_spec_pb2.RuntimeArtifact]
    log: str
    cached: bool = False


def load_spec(path: str) -> pipeline_spec_pb2.PipelineSpec:
    import yaml

    with open(path) as f:
        return json_format.ParseDict(yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec())


def executor_label(spec: pipeline_spec_pb2.PipelineSpec, task: str) -> str:
    """The name of `task`'s executor in the deployment spec."""
    return spec.components[spec.root.dag.tasks[task].component_ref.name].executor_label


def executor_of(spec: pipeline_spec_pb2.PipelineSpec, task: str) -> dict:
    """The deployment spec's executor of `task` (its `container`, `importer`, …), as a dict."""
    return json_format.MessageToDict(spec.deployment_spec)["executors"][
        executor_label(spec, task)]


def check_spec(spec: pipeline_spec_pb2.PipelineSpec, mode: str) -> None:
    """Raises SpecRefused where open-source KFP refuses the spec at run creation."""
    if mode != OPEN_SOURCE_KFP:
        return
    if spec.schema_version != "2.1.0":
        raise SpecRefused(f"schemaVersion {spec.schema_version}: the API server takes 2.1.0")
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    for label, executor in executors.items():
        if set(executor) & {"resolver", "customJob"}:
            raise SpecRefused(f"{label}: {sorted(executor)} executors are not implemented")


def run_pipeline(spec_path: str, pipeline_root: str, run_id: str, mode: str,
                 mounts: list[str], env: dict | None = None,
                 cache: dict | None = None,
                 until: set[str] | None = None) -> dict[str, TaskRun]:
    """Runs every task of the spec (or only the tasks in `until` and those they depend on),
    each in a container with `mounts`, as soon as the tasks it depends on are done (as a
    backend does, up to PARALLEL_TASKS at once); returns the task runs by name. `cache`
    (shared between runs, as a backend's is) enables KFP's caching. Raises
    CalledProcessError (with the task's output) when a task fails."""
    spec = load_spec(spec_path)
    check_spec(spec, mode)
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    tasks = spec.root.dag.tasks
    wanted = _with_upstream(tasks, until) if until is not None else set(tasks)
    done: dict[str, TaskRun] = {}

    def run_task(name: str) -> TaskRun:
        task = tasks[name]
        component = spec.components[task.component_ref.name]
        executor = executors[component.executor_label]
        if "importer" in executor:
            return _import(name, executor["importer"], component)
        executor_input = _executor_input(name, task, component, done, pipeline_root, run_id,
                                         typed_inputs=mode == VERTEX)
        container = executor["container"]
        key = _cache_key(executor_input, container)
        if cache is not None and task.caching_options.enable_cache and key in cache:
            return dataclasses.replace(cache[key], name=name, cached=True)
        # The pod's environment: the spec's `env`, then the test's.
        task_env = {**{e["name"]: e["value"] for e in container.get("env", [])}, **(env or {})}
        if mode == VERTEX and "lifecycle" in container:
            pre_cache_check = container["lifecycle"]["preCacheCheck"]
            _run_command(name, container["image"], pre_cache_check["command"],
                         pre_cache_check["args"], executor_input, task_env, mounts)
        log = _run_command(name, container["image"], container["command"], container["args"],
                           executor_input, task_env, mounts)
        run = TaskRun(name, _outputs(executor_input), log)
        if cache is not None:
            cache[key] = run
        return run

    pending, running = wanted, {}
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_TASKS) as pool:
        while pending or running:
            for name in sorted(pending):
                if _upstream(tasks[name]) <= done.keys():
                    pending.discard(name)
                    running[pool.submit(run_task, name)] = name
            if not running:
                raise SpecRefused(f"tasks wait on each other or on no task: {sorted(pending)}")
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                done[running.pop(future)] = future.result()  # a failure raises here
    return done


def _cache_key(executor_input, container: dict) -> str:
    inputs = executor_input.inputs
    key = {"parameters": {k: json_format.MessageToDict(v)
                          for k, v in sorted(inputs.parameter_values.items())},
           "artifacts": {k: [a.name for a in v.artifacts]
                         for k, v in sorted(inputs.artifacts.items())},
           "outputs": {k: json_format.MessageToDict(v.artifacts[0].type)
                       for k, v in sorted(executor_input.outputs.artifacts.items())},
           "container": {k: container[k] for k in ("image", "command", "args")}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _with_upstream(tasks, names: set[str]) -> set[str]:
    """`names` and every task they wait for, transitively."""
    found, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(_upstream(tasks[name]))
    return found


def _upstream(task) -> set[str]:
    """The tasks this one waits for: its dependencies and the producers of its inputs."""
    return set(task.dependent_tasks) | {spec.task_output_artifact.producer_task
                                        for spec in task.inputs.artifacts.values()}


def _executor_input(name, task, component, done, pipeline_root, run_id, typed_inputs):
    executor_input = pipeline_spec_pb2.ExecutorInput()
    for key, parameter in task.inputs.parameters.items():
        executor_input.inputs.parameter_values[key].CopyFrom(parameter.runtime_value.constant)
    for key, artifact_spec in task.inputs.artifacts.items():
        source = artifact_spec.task_output_artifact
        artifact = executor_input.inputs.artifacts[key].artifacts.add()
        artifact.CopyFrom(done[source.producer_task].outputs[source.output_artifact_key])
        if typed_inputs:
            artifact.type.CopyFrom(component.input_definitions.artifacts[key].artifact_type)
        else:
            artifact.type.instance_schema = ""  # what open-source KFP's driver hands over
    task_root = os.path.join(pipeline_root, run_id, name)
    for key, definition in component.output_definitions.artifacts.items():
        artifact = executor_input.outputs.artifacts[key].artifacts.add()
        artifact.name = f"{run_id}/{name}/{key}"
        artifact.uri = os.path.join(task_root, key)
        artifact.type.CopyFrom(definition.artifact_type)
    executor_input.outputs.output_file = os.path.join(task_root, "executor_output.json")
    return executor_input


def _run_command(name, image, command, args, executor_input, env, mounts) -> str:
    invocation = json_format.MessageToJson(executor_input)
    argv = list(command) + [arg.replace("{{$}}", invocation) for arg in args]
    result = containers.run(image, argv, env, mounts)
    if result.exit_code:
        print(f"task {name} failed:\n{result.stderr[-3000:]}")  # shown by pytest on failure
        raise subprocess.CalledProcessError(result.exit_code, f"task {name}",
                                            output=result.stdout[-5000:],
                                            stderr=result.stderr[-20000:])
    return result.stderr


def _outputs(executor_input) -> dict[str, pipeline_spec_pb2.RuntimeArtifact]:
    """The output artifacts as the launcher records them: the executor's ExecutorOutput
    (metadata, custom properties) over what the driver allocated."""
    outputs = {key: artifacts.artifacts[0]
               for key, artifacts in executor_input.outputs.artifacts.items()}
    path = executor_input.outputs.output_file
    if os.path.exists(path):
        executor_output = pipeline_spec_pb2.ExecutorOutput()
        with open(path) as f:
            json_format.Parse(f.read(), executor_output, ignore_unknown_fields=True)
        for key, artifacts in executor_output.artifacts.items():
            if key in outputs and artifacts.artifacts:
                written = artifacts.artifacts[0]
                outputs[key].metadata.CopyFrom(written.metadata)
                if written.uri:
                    outputs[key].uri = written.uri
    return outputs


def _import(name, importer, component) -> TaskRun:
    artifact = pipeline_spec_pb2.RuntimeArtifact(
        name=f"importer/{name}", uri=importer["artifactUri"]["constant"])
    json_format.ParseDict(importer.get("metadata", {}), artifact.metadata)
    (key,) = component.output_definitions.artifacts
    artifact.type.CopyFrom(component.output_definitions.artifacts[key].artifact_type)
    return TaskRun(name, {key: artifact}, "")


def custom_property(artifact: pipeline_spec_pb2.RuntimeArtifact, name: str):
    """A TFX custom property as the executor wrote it into the artifact's metadata."""
    metadata = json_format.MessageToDict(artifact.metadata)
    return metadata.get(name, metadata.get(f"custom:{name}"))


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)
