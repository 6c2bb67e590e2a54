"""Classify/regress JSON requests → serialized tf.Examples, as TF Serving reads them:
`examples` (and `context`) as tf.Example feature maps (`MakeExampleFromJsonObject` and
`FillClassifyRegressRequestFromJson` in `tensorflow_serving/util/json_tensor.cc`).
Messages are TF Serving's."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from serving.errors import ServingError
from serving.json_requests import debug_text, is_b64, json_type, string_bytes


def examples_from_json(document: dict, method: str) -> list[bytes]:
    """Serialized tf.Examples of a classify/regress request: each example's features over
    the optional `context`'s (`FillClassifyRegressRequestFromJson`; TF Serving serializes
    an ExampleListWithContext the same way, context first)."""
    context = b""
    if "context" in document:
        context = _example_from_json(document["context"]).SerializeToString()
    examples = document.get("examples")
    if "examples" not in document:
        raise ServingError(f"JSON Value: {debug_text(document)} When method is {method}, key "
                           "'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise ServingError(f"JSON Value: {debug_text(document)} Expecting 'examples' value to be "
                           "an list/array")
    if not examples:
        raise ServingError(f"JSON Value: {debug_text(document)} 'examples' value is an empty array")
    return [context + _example_from_json(example).SerializeToString() for example in examples]


def _example_from_json(value) -> tf.train.Example:
    """`MakeExampleFromJsonObject`: feature name → value or list of values."""
    if not isinstance(value, dict):
        raise ServingError(f"Example must be JSON object but got JSON {json_type(value)}")
    example = tf.train.Example()
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_to_feature(item, name, feature)
    return example


def _add_to_feature(value, name: str, feature: tf.train.Feature) -> None:
    """`AddValueToFeature`: bools and integers are int64, other numbers float, strings and
    b64 objects bytes; one kind per feature."""
    if isinstance(value, bool):
        kind, item = "int64_list", int(value)
    elif isinstance(value, float):
        kind, item = "float_list", value
    elif isinstance(value, int):
        if value > np.iinfo(np.int64).max:
            raise ServingError(f"Feature: {name} has uint64_t element. Only int64_t is "
                               "supported.")
        kind, item = "int64_list", value
    elif isinstance(value, str):
        kind, item = "bytes_list", value.encode("utf-8")
    elif is_b64(value):
        kind, item = "bytes_list", string_bytes(value)
    else:
        raise ServingError(f"Feature: {name} has element with unexpected JSON type: "
                           f"{json_type(value)}")
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise ServingError(f"Unexpected element type in feature: {name} expecting type: "
                           f"{current.split('_')[0]}")
    getattr(feature, kind).value.append(item)
