"""Schemas that the pipeline's nodes write when they run, so that each comes from the image
the node runs in. (ImportSchemaGen copies a file named by its path on the machine where the
pipeline was compiled, which a Kubeflow pod does not have.)

- `PackagedSchema`: a schema file shipped in one of the project's packages, found there by
  package and file name: the curated frame-level schema (`pipeline/schemas/`).
- `LabelsSchema`: the schema the Evaluator decodes the examples by when its models read the
  serialized examples themselves (`pipeline.evaluator_decodes_labels_only`): the labels
  alone, which every YouTube-8M example has, video- or frame-level. TFMA decodes the
  schema's features of every example into Arrow beside its serialized record; without a
  schema it decodes every feature (frames included), and an empty schema counts as none.
"""

# No `from __future__ import annotations`: TFX reads the real annotation objects.

import importlib.resources
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Schema
from tfx.utils import io_utils

from trainer_module.features import LABELS_KEY

SCHEMA_FILENAME = "schema.pbtxt"  # SchemaGen's name for it; its readers take the only file


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


@tfx.dsl.components.component
def PackagedSchema(  # noqa: N802
    package: tfx.dsl.components.Parameter[str],
    file_name: tfx.dsl.components.Parameter[str],
    schema: tfx.dsl.components.OutputArtifact[Schema],
) -> None:
    """The schema in `file_name` (text format) of the installed package `package`."""
    text = (importlib.resources.files(package) / file_name).read_text()
    io_utils.write_pbtxt_file(os.path.join(schema.uri, SCHEMA_FILENAME),
                              text_format.Parse(text, schema_pb2.Schema()))
