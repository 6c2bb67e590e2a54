"""JSON ↔ tensors exactly as TF Serving's REST API converts them.

A port of `tensorflow_serving/util/json_tensor.cc` (cited by function name below) and of the
REST contract in `tensorflow_serving/g3doc/api_rest.md`:
- requests: `instances` (row) or `inputs` (columnar); a tensor's shape is read from the JSON
  nesting and every leaf must have the signature's dtype (`AddValueToTensor`: `"0.5"`,
  `true` or `null` are not floats); `{"b64": …}` for binary strings; `NaN`, `Infinity`
  and `-Infinity` tokens are numbers (`ParseJson` uses `kParseNanAndInfFlag`);
- responses: `predictions` / `outputs`, objects only when there are several outputs;
  floats keep a decimal point when whole (`WriteDecimal`), non-finite floats are the tokens
  above; only outputs named `*_bytes` are written as `{"b64": …}` (`IsNamedTensorBytes`);
- classify/regress: `examples` (and `context`) as tf.Example feature maps
  (`MakeExampleFromJsonObject`), `results` out.
Messages are TF Serving's. Unlike TF Serving, which writes string outputs as raw bytes, an
output string that is not UTF-8 is written with U+FFFD replacements (JSON text must be UTF-8).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

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
_NONFINITE_TOKENS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


# --- parsing ----------------------------------------------------------------------------------

def parse_json(body: bytes) -> dict:
    """The request's top-level JSON object (`ParseJson`)."""
    if not body.strip():
        raise ServingError("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)  # fast; refuses NaN tokens and nesting over 1024
    except orjson.JSONDecodeError as error:
        document = _parse_with_nonfinite_tokens(body, error)
    if not isinstance(document, dict):
        raise ServingError(f"JSON Value: {_debug(document)} Is not object")
    return document


def _parse_with_nonfinite_tokens(body: bytes, orjson_error: Exception) -> Any:
    """Python's parser, which reads NaN/Infinity like rapidjson's kParseNanAndInfFlag and,
    like kParseStopWhenDoneFlag, ignores what follows the document."""
    try:
        text = body.decode("utf-8").lstrip()
        document, _ = json.JSONDecoder(parse_constant=_NONFINITE_TOKENS.__getitem__).raw_decode(
            text)
    except (UnicodeDecodeError, ValueError):
        raise ServingError(f"JSON Parse error: {orjson_error}") from None
    except RecursionError:
        raise ServingError("JSON Parse error: the document is nested too deeply") from None
    return document


def signature_name(document: dict) -> str:
    """`signature_name`, "" when absent (`FillSignature`)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise ServingError(f"JSON Value: {_debug(document)} not formatted correctly. "
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
            raise ServingError(f"JSON Value: {_debug(document)} Not formatted correctly "
                               "expecting only one of 'inputs' or 'instances' keys to exist ")
        instances = document["instances"]
        if not isinstance(instances, list):
            raise ServingError(f"JSON Value: {_debug(document)} Expecting 'instances' to be an "
                               "list/array")
        if not instances:
            raise ServingError(f"JSON Value: {_debug(document)} No values in 'instances' array")
        return _from_instances(instances, specs), True
    if "inputs" in document:
        return _from_inputs(document["inputs"], specs), False
    raise ServingError("Missing 'inputs' or 'instances' key")


def _is_named_object(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _is_b64(value) -> bool:
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
                    f"{_debug(instance)} keys must be equal to: {','.join(sorted(specs))}")
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
    if not isinstance(value, dict) or _is_b64(value):
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
            raise ServingError(f"JSON Value: {_debug(value)} found at incorrect level: "
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
            if not _is_b64(value):
                raise ServingError(f"JSON Value: {_debug(value)} not formatted correctly for "
                                   "base64 data")
            return
    elif dtype not in _DTYPE_NAMES:
        raise ServingError(f"Conversion of JSON Value: {_debug(value)} to type: "
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
    raise ServingError(f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of "
                       f"expected type: {_DTYPE_NAMES.get(dtype, dtype.name)}")


def _to_array(value, shape: list[int], dtype: tf.DType) -> np.ndarray:
    """The checked JSON value as an array of the signature's dtype."""
    if dtype != tf.string:
        return np.asarray(value, dtype=dtype.as_numpy_dtype).reshape(shape)
    flat = np.empty(int(np.prod(shape)), dtype=object)
    for index, item in enumerate(_leaves(value, len(shape))):
        flat[index] = _string_bytes(item)
    return flat.reshape(shape)


def _leaves(value, depth: int):
    if depth == 0:
        yield value
        return
    for item in value:
        yield from _leaves(item, depth - 1)


def _string_bytes(value) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise ServingError("Unable to base64 decode") from None


def examples_from_json(document: dict, method: str) -> list[bytes]:
    """Serialized tf.Examples of a classify/regress request: each example's features over
    the optional `context`'s (`FillClassifyRegressRequestFromJson`; TF Serving serializes
    an ExampleListWithContext the same way, context first)."""
    context = b""
    if "context" in document:
        context = _example_from_json(document["context"]).SerializeToString()
    examples = document.get("examples")
    if "examples" not in document:
        raise ServingError(f"JSON Value: {_debug(document)} When method is {method}, key "
                           "'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise ServingError(f"JSON Value: {_debug(document)} Expecting 'examples' value to be "
                           "an list/array")
    if not examples:
        raise ServingError(f"JSON Value: {_debug(document)} 'examples' value is an empty array")
    return [context + _example_from_json(example).SerializeToString() for example in examples]


def _example_from_json(value) -> tf.train.Example:
    """`MakeExampleFromJsonObject`: feature name → value or list of values."""
    if not isinstance(value, dict):
        raise ServingError(f"Example must be JSON object but got JSON {_json_type(value)}")
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
    elif _is_b64(value):
        kind, item = "bytes_list", _string_bytes(value)
    else:
        raise ServingError(f"Feature: {name} has element with unexpected JSON type: "
                           f"{_json_type(value)}")
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise ServingError(f"Unexpected element type in feature: {name} expecting type: "
                           f"{current.split('_')[0]}")
    getattr(feature, kind).value.append(item)


# --- responses -------------------------------------------------------------------------------

def predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> bytes:
    """`MakeJsonFromTensors`: the response body of a predict request."""
    if not outputs:
        raise ServingError("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    values = {name: _json_value(name, outputs[name]) for name in names}
    if not row_format:
        return _dumps({"outputs": values[names[0]] if len(names) == 1 else values})
    batch_size = None
    for name in names:
        if np.ndim(outputs[name]) == 0:
            raise ServingError(f"Tensor name: {name} has no shape information ")
        size = np.shape(outputs[name])[0]
        if batch_size is not None and size != batch_size:
            raise ServingError(f"Tensor name: {name} has inconsistent batch size: {size} "
                               f"expecting: {batch_size}")
        batch_size = size
    if len(names) == 1:
        return _dumps({"predictions": values[names[0]]})
    return _dumps({"predictions": [{name: values[name][row] for name in names}
                                   for row in range(batch_size)]})


def classify_response(classes: np.ndarray | None, scores: np.ndarray | None) -> bytes:
    """`MakeJsonFromClassificationResult`: per example, [label, score] per class ("" labels
    without a `classes` output, 0.0 scores without a `scores` output)."""
    reference = classes if classes is not None else scores
    if reference.shape[0] == 0:
        raise ServingError("Cannot convert empty ClassificationResults to JSON")
    labels = (np.full(reference.shape, "", dtype=object) if classes is None
              else _json_value("classes", classes))
    values = (np.zeros(reference.shape, np.float32) if scores is None
              else _json_value("scores", scores))
    return _dumps({"results": [[[labels[row][c], values[row][c]]
                                for c in range(reference.shape[1])]
                               for row in range(reference.shape[0])]})


def regress_response(values: np.ndarray) -> bytes:
    """`MakeJsonFromRegressionResult`: one number per example."""
    if values.size == 0:
        raise ServingError("Cannot convert empty RegressionResults to JSON")
    return _dumps({"results": _json_value("outputs", values.reshape(-1))})


def error_body(message: str) -> bytes:
    """`MakeJsonFromStatus`."""
    return orjson.dumps({"error": message})


def _dumps(body: dict) -> bytes:
    # orjson writes float32 in its shortest exact form and whole floats with ".0".
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_value(name: str, array: np.ndarray):
    """An output as orjson can write it: numeric arrays as they are, strings as lists."""
    array = np.asarray(array)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return _nonfinite_fragments(array)
    if array.dtype.kind not in ("O", "S", "U"):
        return array if array.ndim else array[()]  # orjson writes numpy scalars, not 0-d arrays
    as_b64 = name.endswith("_bytes")

    def encode(raw):
        raw = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
        if as_b64:
            return {"b64": base64.b64encode(raw).decode("ascii")}
        return raw.decode("utf-8", errors="replace")

    if array.ndim == 0:
        return encode(array.item())
    encoded = np.empty(array.size, dtype=object)
    encoded[:] = [encode(raw) for raw in array.ravel()]
    return encoded.reshape(array.shape).tolist()


def _nonfinite_fragments(array: np.ndarray):
    """Nested lists whose numbers are written as `WriteDecimal` writes them, NaN and
    ±Infinity as bare tokens (orjson would write null)."""
    def number(value):
        if np.isnan(value):
            return orjson.Fragment(b"NaN")
        if np.isinf(value):
            return orjson.Fragment(b"-Infinity" if value < 0 else b"Infinity")
        return value

    if array.ndim == 0:
        return number(array[()])
    return np.vectorize(number, otypes=[object])(array).tolist()


def _debug(value) -> str:
    """`JsonValueToDebugString`: the value as JSON, cut at 256 bytes."""
    if not isinstance(value, (dict, list)):  # json writes NaN and Infinity as rapidjson does
        return json.dumps(value)[:256]
    return orjson.dumps(value).decode()[:256]


def _json_type(value) -> str:
    """`JsonTypeString`."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"
