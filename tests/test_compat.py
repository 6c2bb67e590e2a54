"""Each private hook of a dependency (components/compat.py) still holds on the pinned
versions: an upgrade that moves one fails here, naming it."""

import contextlib
import inspect

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from components import compat


def test_tfmas_features_extractor_stage_has_the_private_name():
    extractor = tfma.extractors.FeaturesExtractor(config_pb2.EvalConfig())
    assert extractor.stage_name == compat.FEATURES_EXTRACTOR_STAGE_NAME, (
        "TFMA renamed its features extractor stage: update components/compat.py")


def test_tfxs_local_launcher_is_wrapped_per_node_and_restored():
    from tfx.orchestration.portable import launcher

    assert "self._pipeline_node = pipeline_node" in inspect.getsource(
        launcher.Launcher.__init__), "TFX's Launcher no longer keeps `_pipeline_node`"
    assert list(inspect.signature(launcher.Launcher.launch).parameters) == ["self"]
    original, seen = launcher.Launcher.launch, []

    @contextlib.contextmanager
    def record(node_id):
        seen.append(node_id)
        yield

    fake = launcher.Launcher.__new__(launcher.Launcher)
    fake._pipeline_node = type("Node", (), {"node_info": type("Info", (), {"id": "Trainer"})})
    with compat.around_each_local_launch(record):
        try:
            launcher.Launcher.launch(fake)
        except Exception:  # noqa: BLE001  (a bare launcher cannot run; the wrap ran first)
            pass
    assert seen == ["Trainer"]
    assert launcher.Launcher.launch is original


def test_tfxs_kubeflow_entrypoint_flags_and_artifact_registry():
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    args, beam = compat.kfp_entrypoint_flags([
        "prog", "--executor_class_path=a.B", "--json_serialized_invocation_args={}",
        "--runner=DirectRunner"])
    assert (args.executor_class_path, args.json_serialized_invocation_args) == ("a.B", "{}")
    assert "--runner=DirectRunner" in beam
    assert isinstance(compiler_utils.TITLE_TO_CLASS_PATH, dict), (
        "TFX moved its artifact title registry: update components/compat.py")
    compat.register_kfp_artifact_types({"yt8m.Test": "components.compat.Test"})
    try:
        assert compiler_utils.TITLE_TO_CLASS_PATH["yt8m.Test"] == "components.compat.Test"
    finally:
        del compiler_utils.TITLE_TO_CLASS_PATH["yt8m.Test"]
