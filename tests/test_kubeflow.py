"""Kubeflow Pipelines v2: the compiled spec matches the local pipeline, references the image and
importable code, carries resources; submission is checked up to the HTTP request."""

import importlib
import json
import re

import pytest
import urllib3
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2 import compiler_utils
from tfx.utils import import_utils

from pipeline import kfp_entrypoint
from pipeline.kubeflow_runner import COMPONENT_RESOURCES, main
from pipeline.pipeline import UNCACHED_NODE_IDS, create_pipeline
from pipeline.pipeline_config import PipelineConfig

IMAGE = "registry.example/yt8m-tfx:1.2.3"
GPU_IMAGE = f"{IMAGE}-cuda"  # the default --gpu_image
CLUSTER_FLAGS = ["--image", IMAGE, "--pipeline_root", "gs://bucket/yt8m",
                 "--data_root", "gs://bucket/yt8m/2018/video",
                 "--predict_data_pattern", "gs://bucket/yt8m/test/*.tfrecord",
                 "--beam_runner", "dataflow", "--beam_arg=--project=p", "--beam_arg=--region=r",
                 "--trainer_gpus", "2", "--model", "MoeModel", "--moe_num_mixtures", "4",
                 "--warm_start", "--eval_steps", "50"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    output = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    assert main(["compile", "--output", str(output), *CLUSTER_FLAGS]) == 0
    text = output.read_text()
    spec = json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec())
    return text, spec, output


def test_spec_has_the_local_pipelines_components(compiled):
    _, spec, _ = compiled
    local = create_pipeline(PipelineConfig(predict_data_pattern="/data/test/*.tfrecord",
                                           warm_start=True))
    assert set(spec.root.dag.tasks) == {component.id for component in local.components}
    assert spec.pipeline_info.name == "yt8m"


def test_static_checks_every_kfp_backend_needs(compiled):
    """What open-source KFP 2.x's API server and Argo compiler accept (kubeflow/pipelines
    backend/src/apiserver/template/v2_template.go: schema 2.1.0 only;
    backend/src/v2/compiler/argocompiler/dag.go: no resolver executors), and what TFX's
    entrypoint needs at run time (every artifact schema title imports)."""
    text, spec, _ = compiled
    assert spec.schema_version == "2.1.0"
    assert "constantValue" not in text  # the 2.0 parameter form the KFP driver lacks
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert all(set(executor) == {"container"} for executor in executors.values())
    for executor in executors.values():
        assert executor["container"]["image"] in (IMAGE, GPU_IMAGE)
        assert executor["container"]["command"] == ["python", "-m", kfp_entrypoint.MODULE]
    for task_id in UNCACHED_NODE_IDS:
        assert not spec.root.dag.tasks[task_id].caching_options.enable_cache
    titles = set(re.findall(r"title: ([\w.]+)", text))
    assert "yt8m.HtmlReport" in titles
    class_paths = {**compiler_utils.TITLE_TO_CLASS_PATH, **kfp_entrypoint.CUSTOM_ARTIFACT_TYPES}
    for title in titles:
        import_utils.import_class_by_path(class_paths[title])


def test_executors_use_the_image_resources_and_runner_flags(compiled):
    _, spec, _ = compiled
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    containers = {name.removesuffix("_executor"): e["container"]
                  for name, e in executors.items() if "container" in e}
    # The Trainer, which asks for GPUs, runs the CUDA image; every other task the CPU one.
    trainer = containers.pop("Trainer")
    assert trainer["image"] == GPU_IMAGE
    assert {c["image"] for c in containers.values()} == {IMAGE}
    assert trainer["resources"]["cpuLimit"] == COMPONENT_RESOURCES["Trainer"].cpu
    assert trainer["resources"]["accelerator"] == {"type": "nvidia.com/gpu", "count": "2"}
    args = trainer["args"]
    assert "--runner=DataflowRunner" in args and f"--sdk_container_image={IMAGE}" in args
    assert "--project=p" in args and "--temp_location=gs://bucket/yt8m/beam_tmp" in args
    custom_config = spec.root.dag.tasks["Trainer"].inputs.parameters["custom_config"]
    training = json.loads(custom_config.runtime_value.constant.string_value)["training"]
    assert training["model_hparams"] == {"moe_num_mixtures": 4}
    assert training["distribution"] == "mirrored"  # GPUs asked for: use them all
    assert training["require_gpus"] == 2  # and never train on the pod's CPU
    assert training["train_dir"] == "gs://bucket/yt8m/train_dir/MoeModel"


def test_the_trainer_validates_on_eval_steps_batches(compiled):
    _, spec, _ = compiled
    eval_args = json_format.MessageToDict(spec.root.dag.tasks["Trainer"].inputs.parameters[
        "eval_args"])
    (value,) = eval_args.values()
    assert json.loads(value["constant"]) == {"splits": ["validate"], "num_steps": 50}


def test_every_project_module_path_in_the_spec_imports(compiled):
    text, _, _ = compiled
    project_path = r"(?<![\w.])(?:trainer_module|components|pipeline|serving)(?:\.\w+)+"
    paths = set(re.findall(project_path, text))
    assert {"trainer_module.train.run_fn", "trainer_module.transform.preprocessing_fn",
            "components.tfma_metrics", "components.tfma_extractors",
            "components.predictions_csv.BatchPredict_Executor"} <= paths
    for path in paths:
        module, _, attribute = path.rpartition(".")
        try:
            importlib.import_module(path)
        except ImportError:
            assert hasattr(importlib.import_module(module), attribute), path


def test_bad_output_name_is_one_line(capsys, tmp_path):
    assert main(["compile", "--output", str(tmp_path / "p.json"), *CLUSTER_FLAGS]) == 2
    assert "--output must be a .yaml file" in capsys.readouterr().err


class FakeKfpApi:
    """Stands in for the network under kfp.Client: records requests, answers like KFP 2.x."""

    def __init__(self):
        self.requests = []

    def request(self, method, url, body=None, fields=None, **kwargs):
        self.requests.append((method, url, json.loads(body) if body else fields))
        path = urllib3.util.parse_url(url).path
        answers = {
            ("GET", "/apis/v2beta1/healthz"): {"multi_user": False},
            ("GET", "/apis/v2beta1/experiments"): {},
            ("POST", "/apis/v2beta1/experiments"): {"experiment_id": "exp-1",
                                                    "display_name": "yt8m"},
            ("POST", "/apis/v2beta1/runs"): {"run_id": "run-1", "experiment_id": "exp-1"},
        }
        status = 200 if (method, path) in answers else 404
        data = json.dumps(answers.get((method, path), {"error": path})).encode()
        return urllib3.HTTPResponse(body=data, status=status, preload_content=True,
                                    headers={"Content-Type": "application/json"})


def test_submission_sends_the_compiled_spec_and_pipeline_root(compiled, monkeypatch, capsys):
    _, spec, package = compiled
    api = FakeKfpApi()
    monkeypatch.setattr(urllib3.PoolManager, "request",
                        lambda pool, *args, **kwargs: api.request(*args, **kwargs))
    assert main(["submit", "--host", "http://kfp.example:8888", "--package", str(package),
                 "--pipeline_root", "gs://other/root", "--experiment", "yt8m",
                 "--run_name", "nightly"]) == 0
    assert "submitted run run-1" in capsys.readouterr().out

    (method, url, run), = [r for r in api.requests if r[1].endswith("/apis/v2beta1/runs")]
    assert method == "POST" and url.startswith("http://kfp.example:8888/")
    assert run["display_name"] == "nightly" and run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["pipeline_root"] == "gs://other/root"
    sent = json_format.ParseDict(run["pipeline_spec"], pipeline_spec_pb2.PipelineSpec())
    assert sent == spec


def test_submitting_a_missing_package_is_one_line(capsys, tmp_path):
    assert main(["submit", "--host", "http://kfp.example", "--package",
                 str(tmp_path / "none.yaml")]) == 2
    assert "does not exist; run `make compile-kfp` first" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [
    ["--model", "NoSuchModel"],
    ["--model", "LogisticModel", "--moe_num_mixtures", "3"],
    ["--label_loss", "L1"],
    ["--label_smoothing", "1.5"],
    ["--preset", "no-such-preset"],
    ["--model", "DbofModel", "--dbof_pooling_method", "median"],
])
def test_compile_refuses_what_the_local_runner_refuses_and_writes_no_spec(
        capsys, tmp_path, tiny_data_root, flags):
    from pipeline.run_local import main as run_local

    def exit_code(run, argv: list[str]) -> int:
        try:
            return run(argv)
        except SystemExit as exit_:  # argparse's refusals (an unknown --preset)
            return exit_.code

    def error_line(err: str) -> str:  # after the program's name, which argparse puts first
        return err.strip().splitlines()[-1].split("error: ", 1)[1]

    output = tmp_path / "pipeline.yaml"
    cluster = [flag for flag in CLUSTER_FLAGS if flag not in ("--moe_num_mixtures", "4")]
    assert exit_code(main, ["compile", "--output", str(output), *cluster, *flags]) == 2
    compile_error = error_line(capsys.readouterr().err)
    assert not output.exists()
    assert exit_code(run_local, ["--data_root", tiny_data_root, "--pipeline_root",
                                 str(tmp_path / "root"), *flags]) == 2
    assert not (tmp_path / "root").exists()
    assert compile_error == error_line(capsys.readouterr().err)


def test_several_trainer_workers_run_as_a_vertex_custom_job(tmp_path, capsys):
    """Vertex AI gives each replica of a custom job its TF_CONFIG (the first worker pool is
    the chief): the Trainer task submits one, with the image on every replica."""
    output = tmp_path / "pipeline.yaml"
    base = ["compile", "--output", str(output), "--image", IMAGE, "--pipeline_root",
            "gs://bucket/yt8m", "--data_root", "gs://bucket/yt8m/2018/video"]
    assert main([*base, "--trainer_workers", "3"]) == 2
    assert "--trainer_workers 3 needs --vertex_project and --vertex_region" in (
        capsys.readouterr().err)
    assert not output.exists()
    assert main([*base, "--trainer_workers", "3", "--vertex_project", "proj",
                 "--vertex_region", "europe-west4"]) == 0
    spec = json_format.ParseDict(yaml.safe_load(output.read_text()),
                                 pipeline_spec_pb2.PipelineSpec())
    executor = json_format.MessageToDict(spec.deployment_spec)["executors"]["Trainer_executor"]
    assert ("tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
            in executor["container"]["args"])
    custom_config = json.loads(spec.root.dag.tasks["Trainer"].inputs.parameters[
        "custom_config"].runtime_value.constant.string_value)
    assert custom_config["training"]["distribution"] == "multi_worker_mirrored"
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == "europe-west4"
    job = custom_config["ai_platform_training_args"]
    assert job["project"] == "proj"
    pools = job["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 2]
    assert {pool["container_spec"]["image_uri"] for pool in pools} == {IMAGE}


@pytest.mark.parametrize("runner", ["direct", "dataflow"])
def test_every_task_has_its_cpu_and_memory_on_every_runner(tmp_path, runner):
    """Keyed by component id: on the default runner ImportExampleGen is the streaming class,
    and the project's own components and the baseline resolver are sized too."""
    output = tmp_path / "pipeline.yaml"
    flags = [flag for flag in CLUSTER_FLAGS if not flag.startswith("--beam_arg")]
    flags[flags.index("--beam_runner") + 1] = runner
    assert main(["compile", "--output", str(output), *flags]) == 0
    spec = yaml.safe_load(output.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert {"ImportExampleGen", "StopOnAnomalies", "BaselineModel", "EvaluationReport"} <= set(
        tasks)
    for task_id, task in tasks.items():
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        resources = spec["deploymentSpec"]["executors"][label]["container"]["resources"]
        expected = COMPONENT_RESOURCES[task_id]
        assert (resources["cpuLimit"], resources["memoryLimit"]) == (
            expected.cpu, expected.memory_gb), task_id


def test_a_component_without_resources_is_refused_at_compile_time(tmp_path, monkeypatch,
                                                                  capsys):
    from pipeline import kubeflow_runner

    sized = dict(COMPONENT_RESOURCES)
    del sized["EvaluationReport"]
    monkeypatch.setattr(kubeflow_runner, "COMPONENT_RESOURCES", sized)
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "--output", str(output), *CLUSTER_FLAGS]) == 2
    assert capsys.readouterr().err == ("error: component EvaluationReport has no entry in "
                                       "kubeflow_runner.COMPONENT_RESOURCES: its pod would be "
                                       "unsized\n")
    assert not output.exists()
