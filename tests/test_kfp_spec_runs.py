"""The compiled Kubeflow spec runs, task by task, each in a container of the pipeline image:
end to end by KFP's own local runner (`kfp.local`), and as open-source KFP and Vertex AI run
it (`tests/kfp_harness.py` says what is and is not simulated), for what that runner does not
do: the open-source backend's cache and untyped inputs, and Vertex's
`lifecycle.preCacheCheck`. Slow: every task is a container (~15 s of imports);
`pytest -m "not kfp"` skips these. `make test` builds the image and hands over its engine's
API (tests/containers.py).

KFP's local runner (DockerRunner) is the KFP SDK maintainers' code: it resolves each task's
inputs, builds its ExecutorInput, replaces the `{{$}}` placeholder, starts the spec's image
with its command and args, and reads the ExecutorOutput back for the tasks downstream. Its
Docker client talks to the podman API socket that `make test` hands over. What it does not do
(kfp/local/__init__.py and the KFP docs, "Local execution": no caching, no resources, no
`lifecycle.preCacheCheck`; every input artifact typed) is checked against the open-source
KFP and Vertex rules of the harness instead."""

import dataclasses
import importlib.resources
import os
import pathlib
import subprocess

import pytest
from google.protobuf import json_format, text_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.utils import io_utils

from components.tfma_metrics import load_evaluation
from pipeline import kfp_entrypoint
from pipeline.kubeflow_runner import main as kubeflow_main
from pipeline.pipeline import FRAME_LEVEL_SCHEMA
from pipeline.pipeline_config import PROJECT_ROOT
from tests import containers
from tests.kfp_harness import (
    OPEN_SOURCE_KFP,
    VERTEX,
    SpecRefused,
    check_spec,
    custom_property,
    executor_label,
    executor_of,
    load_spec,
    run_pipeline,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kfp,
              pytest.mark.skipif(containers.engine_socket() is None,
                                 reason="needs a container engine: run `make test`")]
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
FRAME_SAMPLE = os.path.join(PROJECT_ROOT, "data", "sample", "frame")


def compile_spec(path, tiny_data_root, root, serving, *flags) -> str:
    assert kubeflow_main(["compile", "--image", containers.test_image(),
                          "--pipeline_root", str(root),
                          "--data_root", tiny_data_root, "--serving_model_dir", str(serving),
                          "--batch_size", "128", "--output", str(path), *flags]) == 0
    return str(path)


def pushed_versions(serving) -> list[str]:
    return sorted(os.listdir(serving)) if os.path.isdir(serving) else []


@dataclasses.dataclass
class LocalRun:
    """A kfp.local run of the compiled spec: its spec, the folder of each task's outputs, and
    the serving directory its Pusher pushed to."""

    spec: pipeline_spec_pb2.PipelineSpec
    run_root: pathlib.Path
    serving: pathlib.Path

    def folder(self, task: str) -> pathlib.Path:
        # kfp.local writes each task's ExecutorOutput under <root>/<pipeline>-<timestamp>/
        # <task> (kfp/local/executor_input_utils.py, construct_local_task_root), naming it
        # after the component less the five characters of the KFP SDK's "comp-" prefix,
        # which TFX's compiler does not write (get_local_task_resource_name).
        return self.run_root / self.spec.root.dag.tasks[task].component_ref.name[len("comp-"):]

    def output(self, task: str, key: str) -> pipeline_spec_pb2.RuntimeArtifact:
        """The output artifact `key` as the task's executor wrote it in its ExecutorOutput."""
        output = pipeline_spec_pb2.ExecutorOutput()
        json_format.Parse((self.folder(task) / "executor_output.json").read_text(), output,
                          ignore_unknown_fields=True)
        (artifact,) = output.artifacts[key].artifacts
        return artifact


def _local_image() -> str:
    """The test image as the engine lists it: kfp.local pulls an image that no listed tag
    names (kfp/local/docker_task_handler.py, `run_docker_container`), and podman lists
    local images under localhost/."""
    image = containers.test_image()
    return image if "/" in image else f"localhost/{image}"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, tiny_data_root) -> LocalRun:
    """The spec (with a warm start) run end to end by kfp.local: it trains, blesses and
    pushes the first served model."""
    import docker
    from kfp import components, local

    tmp_path = tmp_path_factory.mktemp("kfp_local")
    root, serving = tmp_path / "root", tmp_path / "serving_model"
    root.mkdir()
    serving.mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("YT8M_TFX_IMAGE", _local_image())
        spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving,
                            "--train_steps", "40", "--warm_start")
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
    compiled = load_spec(spec)
    (run_root,) = [entry for entry in root.iterdir()
                   if entry.name.startswith(f"{compiled.pipeline_info.name}-")]
    return LocalRun(compiled, run_root, serving)


def test_kfp_local_runs_every_task_of_the_compiled_spec(local_run):
    spec = local_run.spec
    container_tasks = {name for name in spec.root.dag.tasks
                       if "container" in executor_of(spec, name)}
    written = {name for name in spec.root.dag.tasks
               if (local_run.folder(name) / "executor_output.json").exists()}
    # Not the runner's statuses: kfp.local reports SUCCESS for a container it could not wait
    # on (docker_task_handler.py assumes exit 0 after an auto-remove), so outputs are checked.
    assert written == container_tasks
    # Nothing was served yet: the warm start and the baseline find no model.
    for task in ("WarmStartModel", "BaselineModel"):
        assert custom_property(local_run.output(task, "model"), "pushed_model") == ""
    assert custom_property(local_run.output("Evaluator", "blessing"), "blessed") == 1
    (version,) = pushed_versions(local_run.serving)
    assert custom_property(local_run.output("Pusher", "pushed_model"),
                           "pushed_destination") == os.path.join(local_run.serving, version)
    assert os.path.exists(os.path.join(local_run.serving, version, "saved_model.pb"))
    report = local_run.output("EvaluationReport", "report").uri
    assert os.path.getsize(os.path.join(report, "evaluation_report.html")) > 10_000


@pytest.fixture(scope="module")
def backend_cache() -> dict:
    """The open-source backend's cache, shared by this module's open-source runs."""
    return {}


def test_open_source_kfp_caches_the_data_steps_and_keeps_the_served_model(
        tmp_path, tiny_data_root, local_run, backend_cache):
    """Two runs on one pipeline root and one backend cache: the data steps, then one training
    step from scratch evaluated against the model kfp.local served."""
    root, serving = tmp_path / "root", local_run.serving
    (version,) = pushed_versions(serving)
    served_gap = load_evaluation(local_run.output("Evaluator", "evaluation").uri)[
        "candidate"]["Overall"]["gap"]
    spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving,
                        "--train_steps", "1", "--start_new_model")
    cache = backend_cache  # the backend's, shared by both runs (and the stock test below)
    data_steps = {"ImportExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
                  "StopOnAnomalies", "Transform"}
    first = run_pipeline(spec, str(root), "run-1", OPEN_SOURCE_KFP,
                         [str(tmp_path), tiny_data_root, str(serving)], QUIET, cache,
                         until={"Transform"})
    assert set(first) == data_steps
    second = run_pipeline(spec, str(root), "run-2", OPEN_SOURCE_KFP,
                          [str(tmp_path), tiny_data_root, str(serving)], QUIET, cache,
                          until={"Pusher"})
    # The data steps come from the cache; what is served is looked up again.
    assert {name for name, run in second.items() if run.cached} == data_steps
    baseline = second["BaselineModel"].outputs["model"]
    assert custom_property(baseline, "pushed_model") == os.path.join(serving, version)
    evaluation = load_evaluation(second["Evaluator"].outputs["evaluation"].uri)
    assert evaluation["baseline"]["Overall"]["gap"] == pytest.approx(served_gap)
    assert evaluation["candidate"]["Overall"]["gap"] < served_gap
    assert custom_property(second["Evaluator"].outputs["blessing"], "blessed") == 0
    assert custom_property(second["Pusher"].outputs["pushed_model"], "pushed") == 0
    assert pushed_versions(serving) == [version]


def test_vertex_runs_the_pre_cache_check_and_hands_over_typed_inputs(tmp_path,
                                                                      tiny_data_root):
    """Vertex's two differences from open-source KFP, on the tasks that show them: the
    example_gen driver runs as ImportExampleGen's `lifecycle.preCacheCheck`, and
    StatisticsGen receives its Examples typed. Every task of the spec runs end to end in the
    kfp.local run above (warm start included) and in the open-source runs."""
    root, serving = tmp_path / "root", tmp_path / "serving_model"
    spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving)
    example_gen = executor_of(load_spec(spec), "ImportExampleGen")
    assert "preCacheCheck" in example_gen["container"]["lifecycle"]
    runs = run_pipeline(spec, str(root), "run-1", VERTEX, [str(tmp_path), tiny_data_root],
                        QUIET, until={"StatisticsGen"})
    assert set(runs) == {"ImportExampleGen", "StatisticsGen"}
    statistics = runs["StatisticsGen"].outputs["statistics"].uri
    assert sorted(os.listdir(statistics)) == ["Split-train", "Split-validate"]


def test_a_frame_level_spec_finds_its_curated_schema_in_the_image(tmp_path):
    """The frame-level SchemaGen task reads the curated schema from the image it runs in, with
    the work tree not mounted: the spec names no path of the machine that compiled it."""
    root, serving = tmp_path / "root", tmp_path / "serving_model"
    spec = compile_spec(tmp_path / "pipeline.yaml", FRAME_SAMPLE, root, serving,
                        "--frame_features", "--model", "DbofModel")
    runs = run_pipeline(spec, str(root), "run-1", OPEN_SOURCE_KFP, [str(tmp_path)], QUIET,
                        until={"SchemaGen"})
    assert set(runs) == {"SchemaGen"}
    written = io_utils.SchemaReader().read(
        io_utils.get_only_uri_in_dir(runs["SchemaGen"].outputs["schema"].uri))
    package, file_name = FRAME_LEVEL_SCHEMA
    curated = text_format.Parse((importlib.resources.files(package) / file_name).read_text(),
                                schema_pb2.Schema())
    assert written == curated


def test_tfx_entrypoint_alone_fails_on_open_source_kfp_inputs(tmp_path, tiny_data_root,
                                                              backend_cache):
    """Why the spec starts `pipeline.kfp_entrypoint`: TFX's own entrypoint cannot read the
    untyped input artifacts open-source KFP hands over. StatisticsGen, the first task with an
    input artifact, runs TFX's entrypoint; ImportExampleGen comes from the backend's cache
    when the open-source runs above filled it."""
    import yaml

    root, serving = tmp_path / "root", tmp_path / "serving_model"
    spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving)
    stock_spec = yaml.safe_load(pathlib.Path(spec).read_text())
    label = executor_label(load_spec(spec), "StatisticsGen")
    command = stock_spec["deploymentSpec"]["executors"][label]["container"]["command"]
    assert command[-1] == kfp_entrypoint.MODULE
    command[-1] = kubeflow_v2_run_executor.__name__
    stock = tmp_path / "stock.yaml"
    stock.write_text(yaml.safe_dump(stock_spec))
    with pytest.raises(subprocess.CalledProcessError) as failure:
        run_pipeline(str(stock), str(root), "run-1", OPEN_SOURCE_KFP,
                     [str(tmp_path), tiny_data_root], QUIET, backend_cache,
                     until={"StatisticsGen"})
    assert failure.value.cmd == "task StatisticsGen"
    assert "'NoneType' object has no attribute 'get'" in failure.value.stderr

    refused = load_spec(spec)
    refused.schema_version = "2.0.0"
    with pytest.raises(SpecRefused, match="the API server takes 2.1.0"):
        check_spec(refused, OPEN_SOURCE_KFP)
