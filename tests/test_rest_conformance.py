"""The local server answers as TF Serving does, case by case.

Each case cites where TF Serving defines the behaviour, in tensorflow/serving:
- `api_rest.md` (tensorflow_serving/g3doc/api_rest.md), the REST API reference;
- `json_tensor.cc` (tensorflow_serving/util/), JSON ↔ tensors, by function;
- `handler.cc` (tensorflow_serving/model_servers/http_rest_api_handler.cc), `util.cc`
  (…/http_rest_api_util.cc), `http_server.cc` (…/http_server.cc): routing and status codes;
- `status_impl.cc` (…/get_model_status_impl.cc), `classifier.cc` and `regressor.cc`
  (tensorflow_serving/servables/tensorflow/), and `handler_test.cc`
  (…/http_rest_api_handler_test.cc), whose expected bodies are quoted.
The model is built here with TF1 SignatureDefs of every method (predict, classify, regress),
as TF Serving's own test models are, and loaded the way TF Serving loads it.
"""

import base64
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from serving.json_requests import MAX_JSON_DEPTH
from tests.helpers import post, rest_client, save_tf1_model

NAME = "conformance"
PREDICT = f"/v1/models/{NAME}:predict"
NON_UTF8 = b"\xff\x00raw"


def build_conformance_model(path: str) -> None:
    """A SavedModel with one signature per response shape the contract distinguishes."""
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        scale = v1.get_variable("scale", initializer=2.0)  # restored through saver_def
        doubled = x * scale
        a = v1.placeholder(tf.int64, [None], name="a")
        b = v1.placeholder(tf.int64, [None], name="b")
        flag = v1.placeholder(tf.bool, [None], name="flag")
        text = v1.placeholder(tf.string, [None], name="text")
        examples = v1.placeholder(tf.string, [None], name="examples")
        parsed = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        batch = tf.shape(examples)[:1]
        info = v1.saved_model.build_tensor_info
        signature = v1.saved_model.signature_def_utils.build_signature_def
        predict, classify, regress = ("tensorflow/serving/predict", "tensorflow/serving/classify",
                                      "tensorflow/serving/regress")
        signatures = {
            "serving_default": signature(
                {"x": info(x)}, {"doubled": info(doubled), "total": info(tf.reduce_sum(x, 1))},
                predict),
            "single_output": signature({"x": info(x)}, {"doubled": info(doubled)}, predict),
            "two_inputs": signature({"a": info(a), "b": info(b)}, {"sum": info(a + b)}, predict),
            "negate": signature({"flag": info(flag)}, {"negated": info(tf.logical_not(flag))},
                                predict),
            "strings": signature(
                {"text": info(text)},
                {"upper": info(tf.strings.upper(text)),
                 "raw_bytes": info(tf.fill(tf.shape(text), tf.constant(NON_UTF8)))}, predict),
            "scalar_output": signature({"x": info(x)}, {"count": info(tf.size(x)),
                                                         "doubled": info(doubled)}, predict),
            "classify_x": signature(
                {"inputs": info(examples)},
                {"classes": info(tf.tile(tf.constant([["low", "high"]]),
                                         tf.concat([batch, [1]], 0))),
                 "scores": info(tf.concat([1 - parsed["x"], parsed["x"]], 1))}, classify),
            "scores_only": signature({"inputs": info(examples)},
                                     {"scores": info(tf.concat([1 - parsed["x"], parsed["x"]], 1))},
                                     classify),
            "regress_x": signature({"inputs": info(examples)},
                                   {"outputs": info(parsed["x"] * scale)}, regress),
        }
        save_tf1_model(path, session, signatures)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    base = tmp_path_factory.mktemp("conformance")
    build_conformance_model(str(base / "3"))
    return rest_client(NAME, str(base), max_request_bytes=100_000)


def answer(client, path, body):
    code, text = post(client, path, body)
    return code, json.loads(text)


def error_of(client, path, body):
    code, text = post(client, path, body)
    parsed = json.loads(text)
    assert set(parsed) == {"error"}, text
    return code, parsed["error"]


# --- requests and responses -----------------------------------------------------------------

def test_row_format_with_several_outputs_gives_an_object_per_instance(client):
    # api_rest.md "Specifying input tensors in row format"; json_tensor.cc
    # MakeRowFormatJsonFromTensors (objects when tensor_map.size() > 1).
    code, body = answer(client, PREDICT, {"instances": [[1, 2.5], [0.5, -1]]})
    assert code == 200
    assert body == {"predictions": [{"doubled": [2.0, 5.0], "total": 3.5},
                                    {"doubled": [1.0, -2.0], "total": -0.5}]}


def test_row_format_with_one_output_gives_bare_values(client):
    # json_tensor.cc MakeRowFormatJsonFromTensors: no object for a single named tensor.
    code, body = answer(client, PREDICT, {"signature_name": "single_output",
                                          "instances": [[1, 2]]})
    assert (code, body) == (200, {"predictions": [[2.0, 4.0]]})


def test_columnar_format(client):
    # api_rest.md "Specifying input tensors in column format"; MakeColumnarFormatJsonFromTensors.
    assert answer(client, PREDICT, {"inputs": [[1, 2]]}) == (
        200, {"outputs": {"doubled": [[2.0, 4.0]], "total": [3.0]}})
    assert answer(client, PREDICT, {"signature_name": "single_output", "inputs": [[1, 2]]}) == (
        200, {"outputs": [[2.0, 4.0]]})
    # FillTensorMapFromInputsMap: named inputs, keys that name no input are ignored.
    assert answer(client, PREDICT, {"signature_name": "two_inputs",
                                    "inputs": {"a": [1], "b": [2], "extra": "ignored"}}) == (
        200, {"outputs": [3]})


def test_named_instances_for_several_inputs(client):
    # api_rest.md: "instances" as a list of objects naming each input.
    assert answer(client, PREDICT, {"signature_name": "two_inputs",
                                    "instances": [{"a": 1, "b": 2}, {"a": 5, "b": -7}]}) == (
        200, {"predictions": [3, -2]})


def test_whole_floats_keep_a_decimal_point(client):
    # json_tensor.cc WriteDecimal: "Add trailing '.0' for whole numbers".
    code, text = post(client, PREDICT, {"signature_name": "single_output",
                                        "instances": [[1, 3]]})
    assert code == 200 and "[2.0,6.0]" in text.replace(" ", "")


def test_nan_and_infinity_are_tokens_both_ways(client):
    # json_tensor.cc ParseJson (kParseNanAndInfFlag) and WriteDecimal ("NaN", "Infinity").
    code, text = post(client, PREDICT, '{"signature_name": "single_output", '
                                       '"instances": [[NaN, Infinity], [-Infinity, 1]]}')
    assert code == 200
    assert text.replace(" ", "") == (
        '{"predictions":[[NaN,Infinity],[-Infinity,2.0]]}')
    values = json.loads(text)["predictions"]  # Python's json reads the tokens
    assert math.isnan(values[0][0]) and values[1][0] == -math.inf


def test_strings_are_text_and_only_bytes_outputs_are_b64(client):
    # json_tensor.cc IsNamedTensorBytes: DT_STRING outputs named *_bytes are {"b64": …}.
    code, body = answer(client, PREDICT, {"signature_name": "strings",
                                          "instances": ["abc", {"b64": "ZGVm"}]})
    assert code == 200
    assert body == {"predictions": [
        {"upper": "ABC", "raw_bytes": {"b64": base64.b64encode(NON_UTF8).decode()}},
        {"upper": "DEF", "raw_bytes": {"b64": base64.b64encode(NON_UTF8).decode()}}]}


def test_integers_and_bools(client):
    # json_tensor.cc AddValueToTensor (IsInt64, IsBool) and AddSingleValueAndAdvance.
    assert answer(client, PREDICT, {"signature_name": "negate", "instances": [True, False]}) == (
        200, {"predictions": [False, True]})
    assert answer(client, PREDICT, {"signature_name": "two_inputs", "inputs": {
        "a": [2**62], "b": [2**62 - 1]}}) == (200, {"outputs": [2**63 - 1]})


def test_trailing_bytes_after_the_document_are_ignored(client):
    # json_tensor.cc ParseJson: kParseStopWhenDoneFlag.
    assert answer(client, PREDICT, '{"inputs": [[NaN, 1]]} trailing')[0] == 200


@pytest.mark.parametrize("body,message", [
    # json_tensor.cc AddValueToTensor: only JSON numbers are DT_FLOAT.
    ({"instances": [["0.5", 1]]}, 'JSON Value: "0.5" Type: String is not of expected type: float'),
    ({"instances": [["nan", 1]]}, "Type: String is not of expected type: float"),
    ({"instances": [[True, 1]]}, "JSON Value: true Type: True is not of expected type: float"),
    ({"instances": [[None, 1]]}, "JSON Value: null Type: Null is not of expected type: float"),
    ({"signature_name": "two_inputs", "inputs": {"a": [1.5], "b": [1]}},
     "Type: Number is not of expected type: int64"),
    ({"signature_name": "two_inputs", "inputs": {"a": [2**63], "b": [1]}},
     "is not of expected type: int64"),
    ({"signature_name": "negate", "instances": [1]}, "is not of expected type: bool"),
    # json_tensor.cc FillTensorProto: dense tensors only.
    ({"instances": [[1, 2], [3]]}, "Expecting tensor size: 2 but got: 1"),
    ({"inputs": [[1, 2], [3]]}, "Encountered list at unexpected size: 1 at level: 1"),
    ({"inputs": [[1, [2]]]}, "Encountered list at unexpected level: 2 expected < 2"),
    ({"inputs": [[[1], 2]]}, "found at incorrect level: 3 in the JSON DOM. Expected at level: 3"),
    # FillTensorMapFromInstancesList / FillTensorMapFromInputsMap.
    ({"instances": [1], "inputs": [1]}, "expecting only one of 'inputs' or 'instances'"),
    ({"instances": {"x": 1}}, "Expecting 'instances' to be an list/array"),
    ({"instances": []}, "No values in 'instances' array"),
    ({"signature_name": "two_inputs", "instances": [1, 2]},
     "instances is a plain list, but expecting list of objects"),
    ({"signature_name": "two_inputs", "instances": [{"a": 1, "b": 2}, [1]]},
     "Expecting object but got list at item 1 of input list"),
    ({"signature_name": "two_inputs", "instances": [{"a": 1}]},
     "Failed to process element: 0 of 'instances' list. JSON object: {\"a\":1} keys must be "
     "equal to: a,b"),
    ({"signature_name": "two_inputs", "instances": [{"a": 1, "c": 2}]},
     "JSON object: does not have named input: c"),
    ({"signature_name": "two_inputs", "inputs": [1]}, "inputs is a plain value/list"),
    ({"signature_name": "two_inputs", "inputs": {"a": [1]}},
     "Missing named input: b in 'inputs' object."),
    ({"signature": "x"}, "Missing 'inputs' or 'instances' key"),
    # JsonDecodeBase64Object.
    ({"signature_name": "strings", "instances": [{"b64": "!!"}]}, "Unable to base64 decode"),
    # IsValBase64Object: "b64" must map to a string, else the object names inputs.
    ({"signature_name": "strings", "instances": [{"b64": 1}]},
     "does not have named input: b64"),
    # FillSignature, handler.cc GetInfoMap.
    ({"signature_name": ["x"], "instances": [1]}, "'signature_name' key must be a string value."),
    ({"signature_name": "nope", "instances": [1]},
     'Serving signature name: "nope" not found in signature def'),
])
def test_malformed_predict_requests_are_400(client, body, message):
    code, error = error_of(client, PREDICT, body)
    assert code == 400 and message in error, error


@pytest.mark.parametrize("body,message", [
    # json_tensor.cc ParseJson, handler_test.cc PredictRequestErrors.
    ("", "JSON Parse error: The document is empty"),
    ("instances = [1, 2]", "JSON Parse error"),
    ("[1, 2]", "Is not object"),
    # Parsable (rapidjson and MAX_PARSE_DEPTH take it), but deeper than any tensor.
    ('{"instances": ' + "[" * 600 + "]" * 600 + "}",
     f"Failed to process element: 0 of 'instances' list. Error: JSON Value: nested deeper "
     f"than {MAX_JSON_DEPTH} lists"),
    ("[" * 100_000, "JSON Parse error"),
    ('{"instances": [[NaN, 1]], "x": ' + "[" * 5000 + "]" * 5000 + "}", "JSON Parse error"),
])
def test_unparsable_bodies_are_400_at_any_depth(client, body, message):
    code, error = error_of(client, PREDICT, body)
    assert code == 400 and message in error, error


def test_the_empty_signature_name_is_serving_default(client):
    # handler.cc GetInfoMap: signature_name.empty() ? kDefaultServingSignatureDefKey.
    assert answer(client, PREDICT, {"signature_name": "", "instances": [[1, 1]]}) == answer(
        client, PREDICT, {"instances": [[1, 1]]})


def test_outputs_without_a_batch_dimension_need_the_columnar_format(client):
    # json_tensor.cc MakeRowFormatJsonFromTensors: "has no shape information".
    code, error = error_of(client, PREDICT, {"signature_name": "scalar_output",
                                             "instances": [[1, 2]]})
    assert code == 400 and "Tensor name: count has no shape information" in error
    assert answer(client, PREDICT, {"signature_name": "scalar_output", "inputs": [[1, 2]]}) == (
        200, {"outputs": {"count": 2, "doubled": [[2.0, 4.0]]}})


# --- classify and regress -------------------------------------------------------------------

def test_classify_returns_label_score_pairs(client):
    # api_rest.md "Classify and Regress API"; json_tensor.cc MakeJsonFromClassificationResult.
    code, body = answer(client, f"/v1/models/{NAME}:classify", {
        "signature_name": "classify_x", "examples": [{"x": 0.25}, {"x": [0.5]}]})
    assert (code, body) == (200, {"results": [[["low", 0.75], ["high", 0.25]],
                                              [["low", 0.5], ["high", 0.5]]]})
    # classifier.cc PostProcessClassificationResult: no classes output → "" labels.
    assert answer(client, f"/v1/models/{NAME}/versions/3:classify", {
        "signature_name": "scores_only", "examples": [{"x": 1.0}]}) == (
        200, {"results": [[["", 0.0], ["", 1.0]]]})


def test_regress_with_a_context(client):
    # api_rest.md: "context" features are common to every example.
    assert answer(client, f"/v1/models/{NAME}:regress", {
        "signature_name": "regress_x", "context": {"x": 1.5}, "examples": [{}, {"x": 4.0}]}) == (
        200, {"results": [3.0, 8.0]})


@pytest.mark.parametrize("verb,body,message", [
    # json_tensor.cc FillClassifyRegressRequestFromJson and MakeExampleFromJsonObject.
    ("classify", {"signature_name": "classify_x"},
     "When method is classify, key 'examples' is expected and was not found"),
    ("classify", {"signature_name": "classify_x", "examples": []},
     "'examples' value is an empty array"),
    ("classify", {"signature_name": "classify_x", "examples": [1]},
     "Example must be JSON object but got JSON Number"),
    ("classify", {"signature_name": "classify_x", "examples": [{"x": None}]},
     "Feature: x has element with unexpected JSON type: Null"),
    ("classify", {"signature_name": "classify_x", "examples": [{"x": [1.5, "a"]}]},
     "Unexpected element type in feature: x expecting type: float"),
    # classifier.cc PreProcessClassification: our serving_default is a predict signature.
    ("classify", {"examples": [{"x": 1.0}]}, "No classification inputs found in SignatureDef"),
    ("classify", {"signature_name": "nope", "examples": [{"x": 1.0}]},
     "No signature was found with the name: nope"),
    ("regress", {"signature_name": "classify_x", "examples": [{"x": 1.0}]},
     "Expected one output Tensor."),
])
def test_malformed_classify_and_regress_requests_are_400(client, verb, body, message):
    code, error = error_of(client, f"/v1/models/{NAME}:{verb}", body)
    assert code == 400 and message in error, error


# --- status, metadata, paths ----------------------------------------------------------------

def test_status_is_snake_case_with_string_version(client):
    # handler_test.cc GetStatus; status_impl.cc, "version" an int64 written as a string.
    expected = {"model_version_status": [{"version": "3", "state": "AVAILABLE", "status": {
        "error_code": "OK", "error_message": ""}}]}
    for path in (f"/v1/models/{NAME}", f"/v1/models/{NAME}/versions/3",
                 f"/v1/models/{NAME}/labels/anything"):  # status ignores the label
        response = client.get(path)
        assert (response.status_code, response.get_json()) == (200, expected), path
        assert response.headers["Content-Type"] == "application/json"


def test_metadata_is_proto_json_with_field_names_and_defaults(client):
    # util.cc ToJsonString(GetModelMetadataResponse): preserve_proto_field_names and
    # always_print_fields_with_no_presence; handler_test.cc GetModelMetadata's expected file
    # (saved_model_half_plus_two_2_versions_metadata.json) for the layout.
    response = client.get(f"/v1/models/{NAME}/metadata")
    body = response.get_json()
    assert response.status_code == 200 and set(body) == {"model_spec", "metadata"}
    assert body["model_spec"] == {"name": NAME, "signature_name": "", "version": "3"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert signatures["two_inputs"] == {
        "inputs": {name: {"dtype": "DT_INT64", "name": f"{name}:0", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}} for name in "ab"},
        "outputs": {"sum": {"dtype": "DT_INT64", "name": "add:0", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}}},
        "method_name": "tensorflow/serving/predict", "defaults": {}}
    assert signatures["classify_x"]["method_name"] == "tensorflow/serving/classify"


@pytest.mark.parametrize("method,path,code,message", [
    # handler_test.cc UnsupportedApiCalls and util.cc ParseModelInfo.
    ("GET", "/v1/foo", 400, "Malformed request: GET /v1/foo"),
    ("POST", "/v1/foo", 400, "Malformed request"),
    ("GET", "/v1/models", 400, "Missing model name in request."),
    ("POST", "/v1/models", 400, "Malformed request"),
    ("GET", f"/v1/models/{NAME}:predict", 400, "Malformed request"),
    ("POST", f"/v1/models/{NAME}/metadata", 400, "Malformed request"),
    ("POST", f"/v1/models/{NAME}/versions/3/labels/x:predict", 400, "Malformed request"),
    ("POST", f"/v1/models/{NAME}/versions/x:predict", 400, "Malformed request"),
    ("POST", f"/v1/models/{NAME}/versions/{2**64 - 1}:predict", 400,
     f"Failed to convert version: {2**64 - 1} to numeric."),
    ("POST", f"/v1/models/{NAME}:PREDICT", 400, "Malformed request"),
    ("PUT", PREDICT, 400, "Malformed request: PUT"),
    ("DELETE", f"/v1/models/{NAME}", 400, "Malformed request"),
    # server_core.cc GetModelVersionForLabel: no labels are configured.
    ("POST", f"/v1/models/{NAME}/labels/stable:predict", 400,
     "Unrecognized servable version label: stable"),
    ("GET", f"/v1/models/{NAME}/labels/stable/metadata", 400, "Unrecognized servable version"),
    # predict: ServerCore::GetServableHandle; status: status_impl.cc.
    ("POST", "/v1/models/other:predict", 404, "Servable not found for request: Latest(other)"),
    ("POST", f"/v1/models/{NAME}/versions/7:predict", 404,
     f"Servable not found for request: Specific({NAME}, 7)"),
    ("GET", f"/v1/models/{NAME}/versions/7/metadata", 404, "Servable not found"),
    ("GET", "/v1/models/other", 404, "Could not find any versions of model other"),
    ("GET", f"/v1/models/{NAME}/versions/7", 404, f"Could not find version 7 of model {NAME}"),
    # http_server.cc: paths outside /v1/ have no handler (TF Serving: 404 without a body).
    ("GET", "/index.html", 404, "Not found"),
    # http_server.cc ProcessRequest: a CORS preflight needs an Origin.
    ("OPTIONS", PREDICT, 400, "Origin header is missing in CORS preflight"),
])
def test_paths_methods_and_codes(client, method, path, code, message):
    body = json.dumps({"instances": [[1, 1]]}) if method == "POST" else None
    response = client.open(path, method=method, data=body)
    assert response.status_code == code
    assert message in response.get_json()["error"], response.get_json()


def test_cors_preflight_with_an_origin_is_ok(client):
    # http_server.cc ProcessRequest: an OPTIONS with an http(s) Origin is answered OK, with
    # no body, and is not taken for a request.
    response = client.options(PREDICT, headers={"Origin": "https://example.com"})
    assert response.status_code == 200 and response.data == b""
    assert answer(client, PREDICT, {"instances": [[1, 1]]})[0] == 200


def test_json_errors_use_tf_servings_codes_and_serving_continues(client):
    # handler.cc MakeJsonFromStatus: {"error": message}; http_server.cc ToHTTPStatusCode.
    assert error_of(client, PREDICT, "x" * 100_001) == (
        413, "Request body of 100001 bytes exceeds the limit of 100000 (--max_request_bytes)")
    assert answer(client, PREDICT, {"instances": [[1, 1]]})[0] == 200


def test_predictions_equal_a_direct_session_run(client, tmp_path):
    # What the server returns is what TF Serving's Session::Run would return.
    from serving.session_model import SessionModel

    build_conformance_model(str(tmp_path / "m"))
    model = SessionModel(str(tmp_path / "m"))
    inputs = np.float32([[0.1, 1e-7], [3.4028235e38, -0.3]])
    direct = model.run("single_output", {"x": inputs})["doubled"]
    model.close()
    _, text = post(client, PREDICT, {"signature_name": "single_output",
                                     "inputs": inputs.tolist()})
    assert np.array_equal(np.float32(json.loads(text)["outputs"]), direct)
