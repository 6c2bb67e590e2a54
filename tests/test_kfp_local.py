"""The compiled Kubeflow spec run by KFP's own local runner (`kfp.local`, DockerRunner): the
KFP SDK maintainers' code resolves each task's inputs, builds its ExecutorInput, replaces the
`{{$}}` placeholder, starts the spec's image with its command and args, and reads the
ExecutorOutput back for the tasks downstream. Here its Docker client talks to the podman API
socket that `make test` hands over (tests/containers.py).

What kfp.local does not do (kfp/local/__init__.py and the KFP docs, "Local execution": no
caching, no resources, no `lifecycle.preCacheCheck`; every input artifact typed) is checked
against the open-source KFP and Vertex rules in tests/kfp_harness.py instead."""

import os

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tests import containers
from tests.kfp_harness import custom_property, load_spec
from tests.test_kfp_spec_runs import QUIET, compile_spec, pushed_versions

pytestmark = [pytest.mark.e2e, pytest.mark.kfp,
              pytest.mark.skipif(containers.engine_socket() is None,
                                 reason="needs a container engine: run `make test`")]


def _local_image() -> str:
    """The test image as the engine lists it: kfp.local pulls an image that no listed tag
    names (kfp/local/docker_task_handler.py, `run_docker_container`), and podman lists
    local images under localhost/."""
    image = containers.test_image()
    return image if "/" in image else f"localhost/{image}"


def test_kfp_local_runs_every_task_of_the_compiled_spec(tmp_path, tiny_data_root,
                                                        monkeypatch):
    import docker
    from kfp import components, local

    root, serving = tmp_path / "root", tmp_path / "serving_model"
    root.mkdir()
    serving.mkdir()
    monkeypatch.setenv("YT8M_TFX_IMAGE", _local_image())
    spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving,
                        "--train_steps", "5")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{containers.engine_socket()}")
    local.init(
        runner=local.DockerRunner(
            environment=QUIET, network_mode="host",
            mounts=[docker.types.Mount(path, path, type="bind")
                    for path in (tiny_data_root, str(serving))],
            ulimits=[docker.types.Ulimit(name="nofile", soft=10000, hard=10000),
                     docker.types.Ulimit(name="nproc", soft=4096, hard=4096)]),
        pipeline_root=str(root), raise_on_error=True)

    components.load_component_from_file(spec)()

    # kfp.local writes each task's ExecutorOutput under <root>/<pipeline>-<timestamp>/<task>
    # (kfp/local/executor_input_utils.py, construct_local_task_root).
    compiled = load_spec(spec)
    (run,) = [entry for entry in root.iterdir()
              if entry.name.startswith(f"{compiled.pipeline_info.name}-")]
    executors = json_format.MessageToDict(compiled.deployment_spec)["executors"]
    tasks = compiled.root.dag.tasks

    def folder(task: str):
        # The component's name less the five characters of the KFP SDK's "comp-" prefix,
        # which TFX's compiler does not write (get_local_task_resource_name).
        return run / tasks[task].component_ref.name[len("comp-"):]

    container_tasks = {name for name, task in tasks.items() if "container" in executors[
        compiled.components[task.component_ref.name].executor_label]}
    written = {name for name in tasks if (folder(name) / "executor_output.json").exists()}
    assert written == container_tasks
    assert custom_property(_output_artifact(folder("Evaluator"), "blessing"), "blessed") == 1
    (version,) = pushed_versions(serving)
    assert custom_property(_output_artifact(folder("Pusher"), "pushed_model"),
                           "pushed_destination") == os.path.join(serving, version)
    assert os.path.exists(os.path.join(serving, version, "saved_model.pb"))


def _output_artifact(task_root, key: str) -> pipeline_spec_pb2.RuntimeArtifact:
    """The output artifact `key` as the task's executor wrote it in its ExecutorOutput."""
    output = pipeline_spec_pb2.ExecutorOutput()
    json_format.Parse((task_root / "executor_output.json").read_text(), output,
                      ignore_unknown_fields=True)
    (artifact,) = output.artifacts[key].artifacts
    return artifact
