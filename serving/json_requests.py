"""JSON requests → tensors exactly as TF Serving's REST API reads them.

A port of the request half of `tensorflow_serving/util/json_tensor.cc` (cited by function
name below) and of the REST contract in `tensorflow_serving/g3doc/api_rest.md`:
- predict: `instances` (row) or `inputs` (columnar); a tensor's shape is read from the JSON
  nesting and every leaf must have the signature's dtype (`AddValueToTensor`: `"0.5"`,
  `true` or `null` are not floats); `{"b64": …}` for binary strings; `NaN`, `Infinity`
  and `-Infinity` tokens are numbers (`ParseJson` uses `kParseNanAndInfFlag`);
- classify/regress requests are read by `serving.json_examples`, with these helpers.
Messages are TF Serving's. `serving.json_responses` writes the answers.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
import orjson
import tensorflow as tf

from serving.errors import ServingError

# Deeper nesting than any tensor has (TF's limit is 254 dimensions, numpy's 64).
MAX_JSON_DEPTH = 64
# The dtypes a JSON value converts to (`AddValueToTensor`), by TF Serving's `DataTypeString`.
_DTYPE_NAMES = {tf.float32: "float", tf.float64: "double", tf.int8: "int8", tf.int16: "int16",
                tf.int32: "int32", tf.uint8: "uint8", tf.int64: "int64", tf.uint32: "uint32",
                tf.uint64: "uint64", tf.bool: "bool", tf.string: "string"}


# --- parsing ----------------------------------------------------------------------------------

def signature_name(document: dict) -> str:
    """`signature_name`, "" when absent (`FillSignature`)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise ServingError(f"JSON Value: {debug_text(document)} not formatted correctly. "
                           "'signature_name' key must be a string value.")
    return name


def predict_inputs(document: dict, specs: dict[str, tf.TensorSpec]
                   ) -> tuple[dict[str, np.ndarray], bool]:
    """Input alias → array from a predict request, and whether it was in row format
    (`FillPredictRequestFromJson`)."""
    if not specs:
        raise ServingError("Failed to get input map for signature")
    if "instances" in document:
        if "inputs" in document:
            raise ServingError(f"JSON Value: {debug_text(document)} Not formatted correctly "
                               "expecting only one of 'inputs' or 'instances' keys to exist ")
        instances = document["instances"]
        if not isinstance(instances, list):
            raise ServingError(f"JSON Value: {debug_text(document)} Expecting 'instances' to be an "
                               "list/array")
        if not instances:
            raise ServingError(f"JSON Value: {debug_text(document)} No values in 'instances' array")
        return _from_instances(instances, specs), True
    if "inputs" in document:
        return _from_inputs(document["inputs"], specs), False
    raise ServingError("Missing 'inputs' or 'instances' key")


def _is_named_object(value) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def is_b64(value) -> bool:
    """Whether `value` is a `{"b64": "…"}` binary string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _from_instances(instances: list, specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    """`FillTensorMapFromInstancesList`: every instance gives one slice of each input."""
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise ServingError("instances is a plain list, but expecting list of objects as "
                           "multiple input tensors required as per tensorinfo_map")
    named = _is_named_object(instances[0])
    first_input = next(iter(specs))
    columns: dict[str, list] = {name: [] for name in specs} if named else {first_input: []}
    shapes: dict[str, list[int]] = {}
    for index, instance in enumerate(instances):
        if named:
            if not _is_named_object(instance):
                raise ServingError(f"Expecting object but got list at item {index} of input "
                                   "list")
            for name, value in instance.items():
                try:
                    _add_instance_item(name, value, specs, shapes, columns)
                except ServingError as error:
                    raise ServingError(f"Failed to process element: {index} key: {name} of "
                                       f"'instances' list. Error: {error}") from None
            if set(instance) != set(specs):
                raise ServingError(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_text(instance)} keys must be equal to: {','.join(sorted(specs))}")
        else:
            if _is_named_object(instance):
                raise ServingError(f"Expecting value/list but got object at item {index} of "
                                   "input list")
            try:
                _add_instance_item(first_input, instance, specs, shapes, columns)
            except ServingError as error:
                raise ServingError(f"Failed to process element: {index} of 'instances' list. "
                                   f"Error: {error}") from None
    return {name: _to_array(values, [len(values), *shapes[name]], specs[name].dtype)
            for name, values in columns.items()}


def _add_instance_item(name: str, value, specs: dict[str, tf.TensorSpec],
                       shapes: dict[str, list[int]], columns: dict[str, list]) -> None:
    """`AddInstanceItem`: checks one instance's value for input `name`."""
    if name not in specs:
        raise ServingError(f"JSON object: does not have named input: {name}")
    shape = _dense_shape(value)
    _check_tensor(value, shape, specs[name].dtype)
    if name not in shapes:
        shapes[name] = shape
    elif shapes[name] != shape:
        size, expected = int(np.prod(shape)), int(np.prod(shapes[name]))
        if size != expected:
            raise ServingError(f"Expecting tensor size: {expected} but got: {size}")
        raise ServingError(f"Expecting shape {_shape_text(shapes[name])} but got: "
                           f"{_shape_text(shape)}")
    columns[name].append(value)


def _from_inputs(value, specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    """`FillTensorMapFromInputsMap`: one value, or an object naming each input (keys that
    name no input are ignored)."""
    if not isinstance(value, dict) or is_b64(value):
        if len(specs) > 1:
            raise ServingError("inputs is a plain value/list, but expecting an object as "
                               "multiple input tensors required as per tensorinfo_map")
        value = {next(iter(specs)): value}
    arrays = {}
    for name, spec in specs.items():
        if name not in value:
            raise ServingError(f"Missing named input: {name} in 'inputs' object.")
        shape = _dense_shape(value[name])
        _check_tensor(value[name], shape, spec.dtype)
        arrays[name] = _to_array(value[name], shape, spec.dtype)
    return arrays


def _dense_shape(value) -> list[int]:
    """`GetDenseTensorShape`: the sizes along the first element of each nested list."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_JSON_DEPTH:
            raise ServingError(f"JSON Value: nested deeper than {MAX_JSON_DEPTH} lists")
        if not value:
            break
        value = value[0]
    return shape


def _check_tensor(value, shape: list[int], dtype: tf.DType, level: int = 0) -> None:
    """`FillTensorProto`: a dense tensor of `shape` whose leaves are all of `dtype`."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise ServingError(f"JSON Value: {debug_text(value)} found at incorrect level: "
                               f"{level + 1} in the JSON DOM. Expected at level: {rank}")
        _check_leaf(value, dtype)
        return
    if level >= rank:
        raise ServingError(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise ServingError(f"Encountered list at unexpected size: {len(value)} at level: "
                           f"{level} expected size: {shape[level]}")
    if level == rank - 1 and dtype != tf.string and _all_leaves(value, dtype):
        return  # the common case, checked without a Python call per number
    for item in value:
        _check_tensor(item, shape, dtype, level + 1)


def _all_leaves(values: list, dtype: tf.DType) -> bool:
    if not values:
        return True
    types = set(map(type, values))
    if dtype == tf.bool:
        return types <= {bool}
    if dtype.is_floating:
        return types <= {float, int}
    if types <= {int}:
        low, high = dtype.min, dtype.max
        return low <= min(values) and max(values) <= high
    return False


def _check_leaf(value, dtype: tf.DType) -> None:
    """`AddValueToTensor` / `JsonDecodeBase64Object`: one value of `dtype`."""
    if dtype == tf.string:
        if isinstance(value, str):
            return
        if isinstance(value, dict):
            if not is_b64(value):
                raise ServingError(f"JSON Value: {debug_text(value)} not formatted correctly for "
                                   "base64 data")
            return
    elif dtype not in _DTYPE_NAMES:
        raise ServingError(f"Conversion of JSON Value: {debug_text(value)} to type: "
                           f"{dtype.name}", 501)
    elif dtype == tf.bool:
        if isinstance(value, bool):
            return
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if dtype.is_floating:
            return
        low, high = dtype.min, dtype.max
        if isinstance(value, int) and low <= value <= high:
            return
    raise ServingError(f"JSON Value: {debug_text(value)} Type: {json_type(value)} is not of "
                       f"expected type: {_DTYPE_NAMES.get(dtype, dtype.name)}")


def _to_array(value, shape: list[int], dtype: tf.DType) -> np.ndarray:
    """The checked JSON value as an array of the signature's dtype."""
    if dtype != tf.string:
        return np.asarray(value, dtype=dtype.as_numpy_dtype).reshape(shape)
    flat = np.empty(int(np.prod(shape)), dtype=object)
    for index, item in enumerate(_leaves(value, len(shape))):
        flat[index] = string_bytes(item)
    return flat.reshape(shape)


def _leaves(value, depth: int):
    if depth == 0:
        yield value
        return
    for item in value:
        yield from _leaves(item, depth - 1)


def string_bytes(value) -> bytes:
    """The bytes of a JSON string or of a `{"b64": …}` object."""
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise ServingError("Unable to base64 decode") from None


def debug_text(value) -> str:
    """`JsonValueToDebugString`: the value as JSON, cut at 256 bytes."""
    if not isinstance(value, (dict, list)):  # json writes NaN and Infinity as rapidjson does
        return json.dumps(value)[:256]
    return orjson.dumps(value).decode()[:256]


def json_type(value) -> str:
    """`JsonTypeString`."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"
