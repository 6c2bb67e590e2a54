"""A local server implementing TF Serving's REST API for the pushed model directory.

Production serving is the `tensorflow/serving` image (`make serve` uses it when Docker is
available). Where it is not, this server answers the same requests for the same SavedModels,
so clients and tests do not change:

    POST /v1/models/{name}[/versions/{v}]:predict   row ("instances") or columnar ("inputs")
    GET  /v1/models/{name}[/versions/{v}]            version status
    GET  /v1/models/{name}[/versions/{v}]/metadata   signature defs

Like TF Serving's default version policy it serves the latest version under the base path and
switches to a newly pushed one within `--file_system_poll_wait_seconds`. Errors are
`{"error": "..."}` with TF Serving's status codes.

    python -m serving.server --model_name=yt8m --model_base_path=serving_model
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import logging
import re
import sys
import threading
import time
from typing import Any

import numpy as np
import orjson
import tensorflow as tf
from flask import Flask, Response, request
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from werkzeug.exceptions import HTTPException

from serving.errors import op_error_reason
from serving.model_dir import available_versions

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "yt8m"
DEFAULT_PORT = 8501
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_SIGNATURE = "serving_default"
# The REST paths TF Serving accepts (labels are not supported here).
MODEL_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?$")


class ServingError(Exception):
    """A request TF Serving would refuse; `status` is the HTTP code it would use."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class LoadedModel:
    version: int
    path: str
    signatures: dict[str, Any]  # name → concrete function
    signature_defs: saved_model_pb2.SavedModel


def load_version(version: int, path: str) -> LoadedModel:
    saved_model = saved_model_pb2.SavedModel()
    with open(f"{path}/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    loaded = tf.saved_model.load(path)
    return LoadedModel(version, path, dict(loaded.signatures), saved_model)


class ModelRegistry:
    """The latest version of one model under a base path, reloaded when a newer one appears."""

    def __init__(self, name: str, base_path: str):
        self.name = name
        self.base_path = base_path
        self._lock = threading.Lock()
        self._current: LoadedModel | None = None

    def refresh(self) -> None:
        """Loads the newest version if it is not the one being served."""
        versions = available_versions(self.base_path)
        if not versions:
            return
        newest = max(versions)
        if self._current is not None and self._current.version == newest:
            return
        try:
            model = load_version(newest, versions[newest])
        except Exception as error:  # a half-copied or broken version must not stop serving
            log.error("cannot load %s version %d: %s", self.name, newest, error)
            return
        with self._lock:
            self._current = model
        log.warning("serving %s version %d from %s", self.name, newest, model.path)

    @property
    def serving_version(self) -> int | None:
        with self._lock:
            return self._current.version if self._current else None

    def get(self, name: str, version: int | None) -> LoadedModel:
        with self._lock:
            current = self._current
        wanted = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        if name != self.name or current is None or (
                version is not None and version != current.version):
            raise ServingError(f"Servable not found for request: {wanted}", 404)
        return current

    def poll_forever(self, interval_seconds: float) -> None:
        while True:
            time.sleep(interval_seconds)
            self.refresh()


# --- JSON ↔ tensors ------------------------------------------------------------------------

def _decode_value(value, dtype: tf.DType):
    """JSON value → numpy-compatible value; `{"b64": …}` and text become bytes for strings."""
    if isinstance(value, list):
        return [_decode_value(v, dtype) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise ServingError("JSON object: does not have named input(s) or a 'b64' key")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise ServingError("Unable to base64 decode the 'b64' value") from None
    if dtype == tf.string:
        if not isinstance(value, str):
            raise ServingError(f"expected a string for a DT_STRING input, got {value!r}")
        return value.encode("utf-8")
    return value


def _to_tensor(name: str, value, spec: tf.TensorSpec) -> tf.Tensor:
    try:
        array = np.asarray(_decode_value(value, spec.dtype),
                           dtype=object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError):
        raise ServingError(f"input '{name}': values are not a {spec.dtype.name} tensor "
                           "(ragged lists or wrong types)") from None
    if not spec.shape.is_compatible_with(array.shape):
        raise ServingError(f"input '{name}': shape {list(array.shape)} does not match the "
                           f"signature's {spec.shape.as_list()}")
    return tf.constant(array, dtype=spec.dtype)


def _inputs_from_body(body: dict, specs: dict[str, tf.TensorSpec]) -> tuple[dict, bool]:
    """Named input tensors from a predict body, and whether it was in row format."""
    if ("instances" in body) == ("inputs" in body):
        raise ServingError("Missing 'inputs' or 'instances' key" if "instances" not in body
                           else "'instances' and 'inputs' cannot both be given")
    names = list(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingError("'instances' must be a non-empty list")
        named = all(isinstance(i, dict) and "b64" not in i for i in instances)
        if named:
            keys = {frozenset(i) for i in instances}
            if keys != {frozenset(names)}:
                raise ServingError(f"instances must each name exactly the inputs {names}")
            columns = {n: [i[n] for i in instances] for n in names}
        elif len(names) == 1:
            columns = {names[0]: instances}
        else:
            raise ServingError(f"the signature has several inputs {names}: each instance must "
                               "be an object naming them")
        row_format = True
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and "b64" not in inputs:
            if set(inputs) != set(names):
                raise ServingError(f"'inputs' must name exactly the inputs {names}")
            columns = inputs
        elif len(names) == 1:
            columns = {names[0]: inputs}
        else:
            raise ServingError(f"the signature has several inputs {names}: 'inputs' must be "
                               "an object naming them")
        row_format = False
    return {n: _to_tensor(n, columns[n], specs[n]) for n in names}, row_format


def _json_value(name: str, tensor: tf.Tensor):
    """A numpy array for numbers (orjson writes them fast and exactly), lists for strings."""
    array = tensor.numpy()
    if tensor.dtype != tf.string:
        return array

    def encode(raw: bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(raw).decode("ascii")}
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(raw).decode("ascii")}

    return np.vectorize(encode, otypes=[object])(array).tolist() if array.ndim else encode(
        array.item())


def predict(model: LoadedModel, body: Any) -> dict:
    """TF Serving's predict: the response body for a parsed request body."""
    if not isinstance(body, dict):
        raise ServingError("JSON Value: the request body must be a JSON object")
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if signature_name not in model.signatures:
        raise ServingError(f"Serving signature name: \"{signature_name}\" not found in "
                           "signature def", 404)
    function = model.signatures[signature_name]
    specs = function.structured_input_signature[1]
    inputs, row_format = _inputs_from_body(body, specs)
    try:
        outputs = function(**inputs)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        raise ServingError(op_error_reason(getattr(error, "message", str(error)))) from None
    values = {name: _json_value(name, tensor) for name, tensor in sorted(outputs.items())}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    batch_sizes = {len(v) if np.ndim(v) > 0 else None for v in values.values()}
    if len(batch_sizes) != 1 or None in batch_sizes:
        raise ServingError("Tensors in the output do not share a batch dimension; use the "
                           "columnar 'inputs' format")
    rows = batch_sizes.pop()
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: v[row] for name, v in values.items()}
                            for row in range(rows)]}


def status(model: LoadedModel) -> dict:
    return {"model_version_status": [{
        "version": str(model.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}


def metadata(name: str, model: LoadedModel) -> dict:
    signature_defs = model.signature_defs.meta_graphs[0].signature_def
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {
            "signature_def": {name: json_format.MessageToDict(signature_defs[name])
                              for name in sorted(signature_defs)},
            "@type": "type.googleapis.com/tensorflow.serving.SignatureDefMap"}},
    }


# --- HTTP ------------------------------------------------------------------------------------

def _json_response(body: dict, status_code: int = 200) -> Response:
    # orjson writes float32 arrays in their shortest exact form, ~15x faster than json.
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status=status_code,
                    mimetype="application/json")


def create_app(registry: ModelRegistry,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Flask:
    """The Flask app answering TF Serving's REST paths for `registry`'s model."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes

    @app.errorhandler(ServingError)
    def serving_error(error: ServingError):
        return _json_response({"error": str(error)}, error.status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _json_response({"error": error.description}, error.code or 500)

    @app.route("/v1/models/<path:target>", methods=["GET", "POST"])
    def models(target: str):
        match = MODEL_PATH.match(target)
        if match is None:
            raise ServingError(f"Malformed request: {request.method} {request.path}", 404)
        version = int(match["version"]) if match["version"] else None
        model = registry.get(match["name"], version)
        if match["verb"]:
            if request.method != "POST":
                raise ServingError(f"Malformed request: {request.method} {request.path}", 405)
            if match["verb"] != "predict":
                raise ServingError(f"{match['verb']} needs a classification or regression "
                                   "signature; this model has predict signatures only")
            try:
                body = orjson.loads(request.get_data())
            except orjson.JSONDecodeError as error:
                raise ServingError(f"JSON Parse error: {error}") from None
            return _json_response(predict(model, body))
        if request.method != "GET":
            raise ServingError(f"Malformed request: {request.method} {request.path}", 405)
        if match["metadata"]:
            return _json_response(metadata(registry.name, model))
        return _json_response(status(model))

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--model_base_path", default="serving_model")
    parser.add_argument("--rest_api_port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (0.0.0.0 exposes the server to the network)")
    parser.add_argument("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    import waitress

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    registry = ModelRegistry(args.model_name, args.model_base_path)
    registry.refresh()
    if registry.serving_version is None:
        print(f"error: no SavedModel version under {args.model_base_path} "
              "(run `make run-local` to push one)", file=sys.stderr)
        return 2
    threading.Thread(target=registry.poll_forever, args=(args.file_system_poll_wait_seconds,),
                     daemon=True).start()
    print(f"serving {args.model_name} on http://{args.host}:{args.rest_api_port}"
          f"/v1/models/{args.model_name}", flush=True)
    waitress.serve(create_app(registry, args.max_request_bytes), host=args.host,
                   port=args.rest_api_port, threads=args.threads,
                   max_request_body_size=args.max_request_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
