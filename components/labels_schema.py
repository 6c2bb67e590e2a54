"""`LabelsSchema`: the schema the Evaluator decodes the examples by when its models read the
serialized examples themselves (`pipeline.evaluator_decodes_labels_only`): the labels alone,
which every YouTube-8M example has, video- or frame-level.

TFMA decodes the schema's features of every example into Arrow beside its serialized record.
Without a schema it decodes every feature (frames included), and an empty schema counts as
none. The schema is written from code, so that the feature's name has one home and the node
runs in any image (ImportSchemaGen names a file by its path where the pipeline compiled).
"""

# No `from __future__ import annotations`: TFX reads the real annotation objects.

import os

from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Schema
from tfx.utils import io_utils

from trainer_module.features import LABELS_KEY

SCHEMA_FILENAME = "schema.pbtxt"  # SchemaGen's name for it; the Evaluator reads the only file


def write_labels_schema(directory: str) -> None:
    """Writes the schema of the labels alone into `directory` (a Schema artifact's uri)."""
    schema = schema_pb2.Schema()
    schema.feature.add(name=LABELS_KEY, type=schema_pb2.INT).int_domain.min = 0
    io_utils.write_pbtxt_file(os.path.join(directory, SCHEMA_FILENAME), schema)


@tfx.dsl.components.component
def LabelsSchema(  # noqa: N802 — TFX components are named like classes
    schema: tfx.dsl.components.OutputArtifact[Schema],
) -> None:
    """The schema of the labels alone, for the Evaluator."""
    write_labels_schema(schema.uri)
