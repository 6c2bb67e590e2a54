"""`StopOnAnomalies`: fails the run when ExampleValidator found anomalies in the data, so that
Transform and the Trainer never spend time on data that breaks the schema."""

# No `from __future__ import annotations`: TFX reads the real annotation objects.

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

ANOMALIES_FILENAME = "SchemaDiff.pb"  # what ExampleValidator writes per split


class DataAnomaliesError(RuntimeError):
    """The data does not match the schema; the message lists each anomaly."""


def describe_anomalies(anomalies: ExampleAnomalies) -> list[str]:
    """One line per anomaly: split, feature and ExampleValidator's description."""
    problems = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(anomalies.uri, f"Split-{split}", ANOMALIES_FILENAME)
        found = anomalies_pb2.Anomalies()
        with fileio.open(path, "rb") as f:
            found.ParseFromString(f.read())
        for feature, info in sorted(found.anomaly_info.items()):
            problems.append(f"{split} split, feature '{feature}': "
                            f"{info.description or info.short_description}")
        if found.HasField("dataset_anomaly_info"):
            problems.append(f"{split} split: {found.dataset_anomaly_info.description}")
    return problems


@tfx.dsl.components.component
def StopOnAnomalies(  # noqa: N802 — TFX components are named like classes
    anomalies: tfx.dsl.components.InputArtifact[ExampleAnomalies],
) -> None:
    """Raises DataAnomaliesError listing the anomalies, if there are any."""
    problems = describe_anomalies(anomalies)
    if problems:
        raise DataAnomaliesError("ExampleValidator found anomalies: " + "; ".join(problems))
