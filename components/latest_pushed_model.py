"""`LatestPushedModel`: the model being served, as an ordinary task any orchestrator runs.

The baseline the Evaluator compares a candidate with, and the model `--warm_start` starts from,
is the newest version under the Pusher's destination: the model in production, which was
blessed when it was pushed. A TFX Resolver node would find it in ML Metadata instead, but
open-source Kubeflow Pipelines cannot run resolver nodes (its Argo compiler rejects them);
this component runs the same way under LocalDagRunner, open-source KFP and Vertex AI.

With `candidate` given and nothing pushed yet, the baseline is the candidate itself: the
Evaluator's change threshold then compares equal values and only the GAP floor decides, which
is the rule for a first model. The output says which it was (`SOURCE_PROPERTY`: the pushed
version's path, or "" for none).
"""

# No `from __future__ import annotations`: TFX reads the real annotation objects.

from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types.standard_artifacts import Model
from tfx.utils import io_utils, path_utils

from serving.model_dir import latest_version

SOURCE_PROPERTY = "pushed_model"  # the served version this copy came from; "" if none


@tfx.dsl.components.component
def LatestPushedModel(  # noqa: N802 — TFX components are named like classes
    model: tfx.dsl.components.OutputArtifact[Model],
    serving_model_dir: tfx.dsl.components.Parameter[str],
    candidate: tfx.dsl.components.InputArtifact[Model] = None,
) -> None:
    """Copies the newest pushed version (else `candidate`'s model, if given) into `model`."""
    pushed = latest_version(serving_model_dir)
    source = pushed or (path_utils.serving_model_path(candidate.uri) if candidate else None)
    destination = path_utils.serving_model_path(model.uri)
    fileio.makedirs(model.uri)
    if source:
        io_utils.copy_dir(source, destination)
    model.set_string_custom_property(SOURCE_PROPERTY, pushed or "")
