"""The compiled Kubeflow spec runs, task by task, each in a container of the pipeline image,
as open-source KFP and Vertex AI run it (`tests/kfp_harness.py` says what is and is not
simulated). KFP's own local runner runs the spec end to end in tests/test_kfp_local.py; the
harness stays for what that runner does not do: the open-source backend's cache and untyped
inputs, and Vertex's `lifecycle.preCacheCheck`. Slow: every task is a container (~15 s of
imports); `pytest -m "not kfp"` skips these. `make test` builds the image and hands over its
engine's API (tests/containers.py)."""

import os
import subprocess

import pytest

from components.tfma_metrics import load_evaluation
from pipeline import kfp_entrypoint
from pipeline.kubeflow_runner import main as kubeflow_main
from tests import containers
from tests.kfp_harness import (
    OPEN_SOURCE_KFP,
    VERTEX,
    SpecRefused,
    check_spec,
    custom_property,
    load_spec,
    run_pipeline,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kfp,
              pytest.mark.skipif(containers.engine_socket() is None,
                                 reason="needs a container engine: run `make test`")]
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


def compile_spec(path, tiny_data_root, root, serving, *flags) -> str:
    assert kubeflow_main(["compile", "--image", containers.test_image(),
                          "--pipeline_root", str(root),
                          "--data_root", tiny_data_root, "--serving_model_dir", str(serving),
                          "--batch_size", "128", "--output", str(path), *flags]) == 0
    return str(path)


def pushed_versions(serving) -> list[str]:
    return sorted(os.listdir(serving)) if os.path.isdir(serving) else []


def test_open_source_kfp_runs_twice_and_keeps_the_blessed_model(tmp_path, tiny_data_root):
    root, serving = tmp_path / "root", tmp_path / "serving_model"
    first_spec = compile_spec(tmp_path / "first.yaml", tiny_data_root, root, serving,
                              "--train_steps", "40")
    cache = {}  # the backend's cache, shared by both runs
    first = run_pipeline(first_spec, str(root), "run-1", OPEN_SOURCE_KFP,
                         [str(tmp_path), tiny_data_root], QUIET, cache)

    assert custom_property(first["Evaluator"].outputs["blessing"], "blessed") == 1
    pushed = first["Pusher"].outputs["pushed_model"]
    assert custom_property(pushed, "pushed") == 1
    (version,) = pushed_versions(serving)
    assert custom_property(pushed, "pushed_destination") == os.path.join(serving, version)
    assert custom_property(first["BaselineModel"].outputs["model"], "pushed_model") == ""
    report = first["EvaluationReport"].outputs["report"].uri
    assert os.path.getsize(os.path.join(report, "evaluation_report.html")) > 10_000
    first_gap = load_evaluation(first["Evaluator"].outputs["evaluation"].uri)[
        "candidate"]["Overall"]["gap"]

    # One training step from scratch: evaluated against the served model, not pushed.
    second_spec = compile_spec(tmp_path / "second.yaml", tiny_data_root, root, serving,
                               "--train_steps", "1", "--start_new_model")
    second = run_pipeline(second_spec, str(root), "run-2", OPEN_SOURCE_KFP,
                          [str(tmp_path), tiny_data_root], QUIET, cache)
    # The data steps come from the cache; what is served is looked up again.
    assert {name for name, run in second.items() if run.cached} == {
        "ImportExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "StopOnAnomalies",
        "Transform"}
    baseline = second["BaselineModel"].outputs["model"]
    assert custom_property(baseline, "pushed_model") == os.path.join(serving, version)
    evaluation = load_evaluation(second["Evaluator"].outputs["evaluation"].uri)
    assert evaluation["baseline"]["Overall"]["gap"] == pytest.approx(first_gap)
    assert evaluation["candidate"]["Overall"]["gap"] < first_gap
    assert custom_property(second["Evaluator"].outputs["blessing"], "blessed") == 0
    assert custom_property(second["Pusher"].outputs["pushed_model"], "pushed") == 0
    assert pushed_versions(serving) == [version]


def test_vertex_runs_every_task_with_its_pre_cache_check(tmp_path, tiny_data_root):
    root, serving = tmp_path / "root", tmp_path / "serving_model"
    spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving,
                        "--train_steps", "5", "--warm_start")
    runs = run_pipeline(spec, str(root), "run-1", VERTEX, [str(tmp_path), tiny_data_root],
                        QUIET)
    assert set(runs) == set(load_spec(spec).root.dag.tasks)
    assert custom_property(runs["WarmStartModel"].outputs["model"], "pushed_model") == ""
    assert os.path.exists(os.path.join(runs["Trainer"].outputs["model"].uri, "Format-Serving",
                                       "saved_model.pb"))


def test_tfx_entrypoint_alone_fails_on_open_source_kfp_inputs(tmp_path, tiny_data_root):
    """Why the spec starts `pipeline.kfp_entrypoint`: TFX's own entrypoint cannot read the
    untyped input artifacts open-source KFP hands over."""
    root, serving = tmp_path / "root", tmp_path / "serving_model"
    spec = compile_spec(tmp_path / "pipeline.yaml", tiny_data_root, root, serving)
    stock = tmp_path / "stock.yaml"
    stock.write_text(open(spec).read().replace(
        kfp_entrypoint.MODULE, "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"))
    with pytest.raises(subprocess.CalledProcessError) as failure:
        run_pipeline(str(stock), str(root), "run-1", OPEN_SOURCE_KFP,
                     [str(tmp_path), tiny_data_root], QUIET)
    assert failure.value.cmd == "task StatisticsGen"  # the first task with an input artifact
    assert "'NoneType' object has no attribute 'get'" in failure.value.stderr

    refused = load_spec(spec)
    refused.schema_version = "2.0.0"
    with pytest.raises(SpecRefused, match="the API server takes 2.1.0"):
        check_spec(refused, OPEN_SOURCE_KFP)
