"""A local server implementing TF Serving's REST API for the pushed model directory.

Production serving is the `tensorflow/serving` image (`make serve` uses it when Docker is
available). Where it is not, this server answers the same requests for the same SavedModels,
loaded the way TF Serving loads them (`serving.session_model`), so clients and tests do not
change:

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            version status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs

Like TF Serving's default version policy it serves the latest version under the base path,
switches to a newly pushed one within `--file_system_poll_wait_seconds` and unloads the old
one; a version that fails to load is retried with back-off while the previous one serves.
Routing, status codes and messages follow `http_rest_api_handler.cc`,
`http_rest_api_util.cc` and `http_server.cc`; docs/serving.md lists where this server
differs.

    python -m serving.server --model_name=yt8m --model_base_path=serving_model
"""

from __future__ import annotations

import argparse
import http
import logging
import re
import sys
import threading

import numpy as np
import orjson
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2

from contract.saved_model import SERVING_DEFAULT_SIGNATURE
from serving import json_examples, json_parse, json_requests, json_responses
from serving.errors import ServingError
from serving.registry import ModelRegistry, Servable
from serving.session_model import SessionModel
from shards.tf_errors import op_error_reason

DEFAULT_MODEL_NAME = "yt8m"
DEFAULT_PORT = 8501
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_SIGNATURE = SERVING_DEFAULT_SIGNATURE  # TF Serving's default too
MAX_VERSION = 2**63 - 1
# `kPredictionApiGegex` and `kModelStatusApiRegex` (http_rest_api_util.cc); only paths under
# /v1/ reach the handler (`kHTTPRestApiHandlerPathRegex`).
HANDLED_PATH = re.compile(r"/v1/.*", re.I | re.S)
PREDICTION_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:(?:/versions/(?P<version>\d+))|"
    r"(?:/labels/(?P<label>[^/:]+)))?:(?P<verb>classify|regress|predict)", re.I)
STATUS_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:(?:/versions/(?P<version>\d+))|"
    r"(?:/labels/(?P<label>[^/:]+)))?(?:/(?P<subresource>metadata))?", re.I)
# `ToHTTPStatusCode` (http_server.cc), by TensorFlow error code.
HTTP_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
               10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}


# --- requests -------------------------------------------------------------------------------

def _run(model: SessionModel, signature: str, inputs: dict[str, np.ndarray]) -> dict:
    try:
        return model.run(signature, inputs)
    except tf.errors.OpError as error:
        raise ServingError(op_error_reason(error.message),
                           HTTP_STATUS.get(error.error_code, 500)) from None
    except (ValueError, TypeError) as error:  # a fed array TF cannot convert
        raise ServingError(op_error_reason(str(error))) from None


def predict(servable: Servable, document: dict, signature: str) -> bytes:
    """`ProcessPredictRequest` for a parsed request body."""
    model = servable.model
    name = signature or DEFAULT_SIGNATURE
    if name not in model.signature_defs:
        raise ServingError(f'Serving signature name: "{name}" not found in signature def')
    inputs, row_format = json_requests.predict_inputs(document, model.input_specs(name))
    dtypes = {alias: info.dtype for alias, info in model.signature_defs[name].outputs.items()}
    for alias in sorted(dtypes):
        if dtypes[alias] == types_pb2.DT_VARIANT:  # Python cannot fetch it: refused before
            json_responses.check_writable(dtypes[alias], 1)
    return json_responses.predict_response(_run(model, name, inputs), row_format, dtypes)


def classify_or_regress(servable: Servable, document: dict, signature: str,
                        verb: str) -> bytes:
    """`ProcessClassifyRequest` / `ProcessRegressRequest` (classifier.cc, regressor.cc, with
    TF Serving's default of no method_name check)."""
    examples = json_examples.examples_from_json(document, verb)
    model = servable.model
    name = signature or DEFAULT_SIGNATURE
    if name not in model.signature_defs:
        raise ServingError(f"No signature was found with the name: {name}")
    signature_def = model.signature_defs[name]
    if len(signature_def.inputs) != 1:
        raise ServingError("Expected one input Tensor.")
    wanted = ("classes", "scores") if verb == "classify" else ("outputs",)
    if verb == "classify" and len(signature_def.outputs) not in (1, 2):
        raise ServingError("Expected one or two output Tensors, found "
                           f"{len(signature_def.outputs)}")
    if verb == "regress" and len(signature_def.outputs) != 1:
        raise ServingError("Expected one output Tensor.")
    kind = "classification" if verb == "classify" else "regression"
    if "inputs" not in signature_def.inputs:
        raise ServingError(f"No {kind} inputs found in SignatureDef: {signature_def}")
    if not set(wanted) & set(signature_def.outputs):
        raise ServingError(f"No {kind} outputs found in SignatureDef: {signature_def}")
    outputs = _run(model, name, {"inputs": np.array(examples, dtype=object)})
    dtypes = {alias: info.dtype for alias, info in signature_def.outputs.items()}
    if verb == "regress":
        values = outputs["outputs"]
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
            raise ServingError("Expected output Tensor shape to be either [batch_size] or "
                               f"[batch_size, 1] but got {list(values.shape)}")
        if values.shape[0] != len(examples):
            raise ServingError("Input batch size did not match output batch size: "
                               f"{len(examples)} vs. {values.shape[0]}")
        _expect_dtype("output", dtypes["outputs"], types_pb2.DT_FLOAT, ".  Got: ")
        return json_responses.regress_response(values)
    classes, scores = outputs.get("classes"), outputs.get("scores")
    # regressor.cc / classifier.cc PostProcess*Result: shape, then type, then batch size.
    for output, alias, wanted in ((classes, "classes", types_pb2.DT_STRING),
                                  (scores, "scores", types_pb2.DT_FLOAT)):
        if output is None:
            continue
        if output.ndim != 2:
            raise ServingError("Expected Tensor shape: [batch_size num_classes] but got "
                               f"{list(output.shape)}")
        _expect_dtype(alias, dtypes[alias], wanted, ". Got: ")
        if output.shape[0] != len(examples):
            raise ServingError(f"Expected {alias} output batch size of {len(examples)}. Got: "
                               f"{output.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise ServingError("Tensors class and score should match in dim_size(1). Got "
                           f"{classes.shape[1]} vs. {scores.shape[1]}")
    return json_responses.classify_response(classes, scores)


def _expect_dtype(alias: str, dtype: int, wanted: int, separator: str) -> None:
    if dtype != wanted:
        raise ServingError(f"Expected {alias} Tensor of {types_pb2.DataType.Name(wanted)}"
                           f"{separator}{types_pb2.DataType.Name(dtype)}")


def metadata(name: str, servable: Servable) -> bytes:
    """`GetModelMetadata`: proto JSON with proto field names and default fields."""
    signature_defs = servable.model.signature_defs
    return orjson.dumps({
        "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
        "metadata": {"signature_def": {"signature_def": {
            key: json_format.MessageToDict(signature_defs[key], preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True)
            for key in sorted(signature_defs)}}}})


# --- HTTP ------------------------------------------------------------------------------------

class RestApi:
    """The WSGI application answering TF Serving's REST paths for `registry`'s model."""

    def __init__(self, registry: ModelRegistry,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
        self.registry = registry
        self.max_request_bytes = max_request_bytes

    def __call__(self, environ: dict, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        body, status = b"", 200
        try:
            if method == "OPTIONS":
                if not re.search(r"https?://", environ.get("HTTP_ORIGIN", "")):
                    raise ServingError("Origin header is missing in CORS preflight")
            elif not HANDLED_PATH.fullmatch(path):
                raise ServingError(f"Not found: {method} {path}", 404)
            else:
                body = self._handle(method, path, environ)
        except ServingError as error:
            body, status = json_responses.error_body(str(error)), error.status
        start_response(f"{status} {_reason(status)}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(body)))])
        return [body]

    def _handle(self, method: str, path: str, environ: dict) -> bytes:
        """`HttpRestApiHandler::ProcessRequest`."""
        malformed = ServingError(f"Malformed request: {method} {path}")
        pattern = {"POST": PREDICTION_PATH, "GET": STATUS_PATH}.get(method)
        match = pattern.fullmatch(path) if pattern else None
        if match is None:
            raise malformed
        name, label = match["name"] or "", match["label"]
        version = None
        if match["version"]:
            version = int(match["version"])
            if version > MAX_VERSION:
                raise ServingError(f"Failed to convert version: {match['version']} to numeric.")
        if method == "POST":
            if match["verb"] not in ("predict", "classify", "regress"):
                raise malformed  # the path pattern ignores case, the dispatch does not
            document = json_parse.parse_json(self._read_body(environ))
            signature = json_requests.signature_name(document)
            self._check_label(label)
            with self.registry.use(name, version) as servable:
                if match["verb"] == "predict":
                    return predict(servable, document, signature)
                return classify_or_regress(servable, document, signature, match["verb"])
        if not name:
            raise ServingError("Missing model name in request.")
        if match["subresource"] == "metadata":
            self._check_label(label)
            with self.registry.use(name, version) as servable:
                return metadata(name, servable)
        # Status ignores a label: `GetModelStatusWithModelSpec` reads only the version.
        return orjson.dumps(self.registry.status(name, version))

    @staticmethod
    def _check_label(label: str | None) -> None:
        # No version labels are configured (`--model_config_file` is not supported here).
        if label is not None:
            raise ServingError(f"Unrecognized servable version label: {label}")

    def _read_body(self, environ: dict) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.max_request_bytes:
            raise ServingError(f"Request body of {length} bytes exceeds the limit of "
                               f"{self.max_request_bytes} (--max_request_bytes)", 413)
        return environ["wsgi.input"].read(length) if length else b""


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:  # 499, nginx's and TF Serving's "client closed request"
        return "Client Closed Request"


def create_app(registry: ModelRegistry,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> RestApi:
    """The WSGI app answering TF Serving's REST paths for `registry`'s model."""
    return RestApi(registry, max_request_bytes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--model_base_path", default="serving_model")
    parser.add_argument("--rest_api_port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (0.0.0.0 exposes the server to the network)")
    parser.add_argument("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--rest_api_num_threads", type=int, default=4)
    parser.add_argument("--max_connections", type=int, default=1000,
                        help="open connections at once; more wait to be accepted")
    parser.add_argument("--idle_timeout_seconds", type=int, default=30,
                        help="a connection that sends nothing for this long is closed")
    args = parser.parse_args(argv)
    from serving.http import serve

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    registry = ModelRegistry(args.model_name, args.model_base_path)
    registry.refresh()
    if registry.serving_version is None:
        print(f"error: no loadable SavedModel version under {args.model_base_path} "
              "(run `make run-local` to push one)", file=sys.stderr)
        return 2
    threading.Thread(target=registry.poll_forever, args=(args.file_system_poll_wait_seconds,),
                     daemon=True).start()
    print(f"serving {args.model_name} on http://{args.host}:{args.rest_api_port}"
          f"/v1/models/{args.model_name}", flush=True)
    serve(create_app(registry, args.max_request_bytes), host=args.host,
          port=args.rest_api_port, threads=args.rest_api_num_threads,
          max_request_bytes=args.max_request_bytes, max_connections=args.max_connections,
          idle_timeout_seconds=args.idle_timeout_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
