"""Every place this project reaches into a private part of a dependency, in one module. Each
is pinned by requirements.lock, and tests/test_compat.py fails naming the hook when an upgrade
moves it.

- TFMA names its features-extractor stage only in a private constant, which the Evaluator's
  batch-keeping extractors (components.tfma_extractors) must place themselves after.
- TFX's LocalDagRunner has no per-component callback: `Launcher.launch` (one call per node, in
  topological order, tfx/orchestration/local/local_dag_runner.py) is wrapped to time each
  component, which it names from the launcher's private `_pipeline_node`.
- TFX's Kubeflow v2 container entrypoint parses its flags in a private `_parse_flags`, and
  resolves artifact types through a module dict, `compiler_utils.TITLE_TO_CLASS_PATH`, that
  our custom artifact types are added to (pipeline.kfp_entrypoint).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from tensorflow_model_analysis.extractors.features_extractor import (
    _FEATURES_EXTRACTOR_STAGE_NAME as FEATURES_EXTRACTOR_STAGE_NAME,
)

__all__ = ["FEATURES_EXTRACTOR_STAGE_NAME", "around_each_local_launch", "kfp_entrypoint_flags",
           "register_kfp_artifact_types"]


@contextlib.contextmanager
def around_each_local_launch(
        wrap: Callable[[str], contextlib.AbstractContextManager]) -> Iterator[None]:
    """While active, each component LocalDagRunner launches runs inside `wrap(node id)`."""
    from tfx.orchestration.portable import launcher

    original = launcher.Launcher.launch

    def launch(self):
        with wrap(self._pipeline_node.node_info.id):  # noqa: SLF001
            return original(self)

    launcher.Launcher.launch = launch
    try:
        yield
    finally:
        launcher.Launcher.launch = original


def register_kfp_artifact_types(title_to_class_path: dict[str, str]) -> None:
    """Lets TFX's Kubeflow v2 entrypoint resolve these artifact schema titles to classes."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    compiler_utils.TITLE_TO_CLASS_PATH.update(title_to_class_path)


def kfp_entrypoint_flags(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """`argv` parsed exactly as TFX's Kubeflow v2 entrypoint parses it: its flags, and the
    rest (Beam's)."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    return kubeflow_v2_run_executor._parse_flags(argv)  # noqa: SLF001
