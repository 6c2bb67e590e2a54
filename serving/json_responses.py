"""Tensors → JSON responses exactly as TF Serving's REST API writes them.

A port of the response half of `tensorflow_serving/util/json_tensor.cc` (cited by function
name below): `predictions` / `outputs`, objects only when there are several outputs; floats
keep a decimal point when whole (`WriteDecimal`), non-finite floats are the bare tokens
`NaN`, `Infinity`, `-Infinity`; only outputs named `*_bytes` are written as `{"b64": …}`
(`IsNamedTensorBytes`); classify/regress answers are `results`. Unlike TF Serving, which
writes string outputs as raw bytes, an output string that is not UTF-8 is written with
U+FFFD replacements (JSON text must be UTF-8). An output of a type `AddSingleValueAndAdvance`
has no case for (half, bfloat16, complex, uint16, quantized, resource, variant, …) is refused
as it refuses it, with 400 "Failed to write JSON value for tensor type: <type>", once it
has a value to write (an empty one is written as `[]`).
"""

from __future__ import annotations

import base64

import numpy as np
import orjson
from tensorflow.core.framework import types_pb2

from serving.errors import ServingError

# The tensor types json_tensor.cc `AddSingleValueAndAdvance` writes; any other fails there.
WRITABLE_DTYPES = frozenset((
    types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT16,
    types_pb2.DT_INT8, types_pb2.DT_UINT8, types_pb2.DT_STRING, types_pb2.DT_INT64,
    types_pb2.DT_BOOL, types_pb2.DT_UINT32, types_pb2.DT_UINT64))


def data_type_string(dtype: int) -> str:
    """TensorFlow's `DataTypeString` of a DataType enum value: DT_HALF → "half"."""
    return types_pb2.DataType.Name(dtype)[len("DT_"):].lower()


def check_writable(dtype: int, size: int) -> None:
    """Raises ServingError as TF Serving's writer fails on a tensor it cannot write."""
    if dtype not in WRITABLE_DTYPES and size > 0:
        raise ServingError(
            f"Failed to write JSON value for tensor type: {data_type_string(dtype)}")


def predict_response(outputs: dict[str, np.ndarray], row_format: bool,
                     dtypes: dict[str, int]) -> bytes:
    """`MakeJsonFromTensors`: the response body of a predict request; `dtypes` are the
    outputs' DataType enum values, as the SignatureDef declares them."""
    if not outputs:
        raise ServingError("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if not row_format:
        for name in names:
            check_writable(dtypes[name], np.size(outputs[name]))
        values = {name: _json_value(name, outputs[name]) for name in names}
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
    for name in names:  # after the batch sizes, as MakeRowFormatJsonFromTensors checks them
        check_writable(dtypes[name], np.size(outputs[name]))
    values = {name: _json_value(name, outputs[name]) for name in names}
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
    """Nested lists of JSON fragments: each number as orjson writes it in the array's own
    precision (the shortest text that reads back as the same float32), NaN and ±Infinity as
    `WriteDecimal`'s bare tokens (orjson would write null)."""
    def number(value) -> orjson.Fragment:
        if np.isnan(value):
            return orjson.Fragment(b"NaN")
        if np.isinf(value):
            return orjson.Fragment(b"-Infinity" if value < 0 else b"Infinity")
        return orjson.Fragment(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))

    if array.ndim == 0:
        return number(array[()])
    fragments = np.empty(array.size, dtype=object)
    fragments[:] = [number(value) for value in array.ravel()]  # numpy scalars, not floats
    return fragments.reshape(array.shape).tolist()
