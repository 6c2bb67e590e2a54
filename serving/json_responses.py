"""Tensors → JSON responses exactly as TF Serving's REST API writes them.

A port of the response half of `tensorflow_serving/util/json_tensor.cc` (cited by function
name below): `predictions` / `outputs`, objects only when there are several outputs; floats
keep a decimal point when whole (`WriteDecimal`), non-finite floats are the bare tokens
`NaN`, `Infinity`, `-Infinity`; only outputs named `*_bytes` are written as `{"b64": …}`
(`IsNamedTensorBytes`); classify/regress answers are `results`. Unlike TF Serving, which
writes string outputs as raw bytes, an output string that is not UTF-8 is written with
U+FFFD replacements (JSON text must be UTF-8).
"""

from __future__ import annotations

import base64

import numpy as np
import orjson

from serving.errors import ServingError


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
