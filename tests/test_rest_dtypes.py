"""The local server writes, or refuses, outputs of every tensor type as TF Serving does, and
reads malformed bodies with rapidjson's messages. No request gets a 5xx.

Cited from tensorflow/serving: `json_tensor.cc` `AddSingleValueAndAdvance` (the types it
writes; any other: "Failed to write JSON value for tensor type: <DataTypeString>"),
`WriteDecimal` (NaN/Infinity tokens), `ParseJson` ("JSON Parse error: <GetParseError_En> at
offset: <n>"; `http_rest_api_handler_test.cc` expects "JSON Parse error: Invalid value"),
`classifier.cc` and `regressor.cc` (output type checks).
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import post, rest_client, save_tf1_model

NAME = "dtypes"
PREDICT, CLASSIFY, REGRESS = (f"/v1/models/{NAME}:{verb}"
                              for verb in ("predict", "classify", "regress"))
# Output types TF Serving writes, with what `[[1.5, -2]]` becomes as that type.
WRITTEN = {"float32": [[1.5, -2.0]], "float64": [[1.5, -2.0]], "int8": [[1, -2]],
           "int16": [[1, -2]], "int32": [[1, -2]], "int64": [[1, -2]], "uint8": [[1, 254]],
           "uint32": [[1, 4294967294]], "uint64": [[1, 18446744073709551614]],
           "bool": [[True, True]], "string": [["1.5", "-2"]]}
# Every other type a signature can return, by TF Serving's DataTypeString.
REFUSED = ("half", "bfloat16", "complex64", "complex128", "uint16", "qint8", "quint8",
           "qint32", "resource", "variant")


def _outputs(x, variable) -> dict:
    outputs = {name: tf.cast(x, name) for name in WRITTEN if name not in ("bool", "string")}
    outputs.update({
        "uint8": tf.cast(tf.cast(x, tf.int32), tf.uint8),  # -2 wraps, as in C++
        "uint32": tf.cast(tf.cast(x, tf.int64), tf.uint32),
        "uint64": tf.cast(tf.cast(x, tf.int64), tf.uint64),
        "bool": tf.not_equal(x, 0), "string": tf.strings.as_string(x, shortest=True),
        "half": tf.cast(x, tf.float16), "bfloat16": tf.cast(x, tf.bfloat16),
        "complex64": tf.cast(x, tf.complex64), "complex128": tf.cast(x, tf.complex128),
        "uint16": tf.cast(tf.cast(x, tf.int32), tf.uint16),
        "resource": variable.handle,
        "variant": tf.raw_ops.TensorListFromTensor(tensor=x, element_shape=tf.constant(
            [2], tf.int32))})
    for name in ("qint8", "quint8", "qint32"):
        outputs[name] = tf.quantization.quantize(x, -4.0, 4.0, name).output
    # An output may not be the input itself (float32's cast is): TF refuses to feed and
    # fetch one tensor.
    return {name: tf.identity(output) for name, output in outputs.items()}


def build_dtype_model(path: str) -> None:
    """One predict signature per output type, and classify/regress signatures whose scores
    or values hold NaN and ±Infinity or have the wrong type."""
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        variable = v1.get_variable("v", initializer=1.0, use_resource=True)
        examples = v1.placeholder(tf.string, [None], name="examples")
        value = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        info = v1.saved_model.build_tensor_info
        signature = v1.saved_model.signature_def_utils.build_signature_def
        signatures = {name: signature({"x": info(x)}, {"y": info(output)},
                                      "tensorflow/serving/predict")
                      for name, output in _outputs(x, variable).items()}
        nonfinite = tf.constant([[0.2, np.inf, 1.0, -np.inf, np.nan]], tf.float32)
        batch = tf.shape(examples)[:1]
        signatures["classify_nonfinite"] = signature(
            {"inputs": info(examples)}, {"scores": info(tf.tile(nonfinite, tf.concat(
                [batch, [1]], 0)))}, "tensorflow/serving/classify")
        signatures["classify_int_scores"] = signature(
            {"inputs": info(examples)}, {"scores": info(tf.cast(value, tf.int32))},
            "tensorflow/serving/classify")
        signatures["regress_nonfinite"] = signature(
            {"inputs": info(examples)}, {"outputs": info(value / 0.0)},
            "tensorflow/serving/regress")
        signatures["regress_double"] = signature(
            {"inputs": info(examples)}, {"outputs": info(tf.cast(value, tf.float64))},
            "tensorflow/serving/regress")
        signatures["nonfinite"] = signature(
            {"x": info(x)}, {"y": info(tf.concat([x, nonfinite[:, :3] + 0 * x[:, :1]], 1))},
            "tensorflow/serving/predict")
        save_tf1_model(path, session, signatures)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    base = tmp_path_factory.mktemp("dtypes")
    build_dtype_model(str(base / "1"))
    return rest_client(NAME, str(base))


@pytest.mark.parametrize("dtype", sorted(WRITTEN))
def test_types_tf_serving_writes_are_written(client, dtype):
    code, text = post(client, PREDICT, {"signature_name": dtype, "instances": [[1.5, -2]]})
    assert (code, json.loads(text)) == (200, {"predictions": WRITTEN[dtype]})


@pytest.mark.parametrize("dtype", REFUSED)
@pytest.mark.parametrize("row_format", [True, False])
def test_other_types_get_tf_servings_400_and_the_server_keeps_serving(client, dtype,
                                                                       row_format):
    body = {"signature_name": dtype, ("instances" if row_format else "inputs"): [[1.5, -2]]}
    code, text = post(client, PREDICT, body)
    assert (code, json.loads(text)) == (
        400, {"error": f"Failed to write JSON value for tensor type: {dtype}"})
    assert post(client, PREDICT, {"signature_name": "float32", "instances": [[1, 2]]})[0] == 200


def test_nonfinite_floats_keep_their_shortest_float32_digits(client):
    code, text = post(client, PREDICT, {"signature_name": "nonfinite",
                                        "instances": [[0.1, 1e-05]]})
    assert code == 200
    # The finite values as the finite path writes them: the shortest float32 text.
    finite = post(client, PREDICT, {"signature_name": "float32",
                                    "instances": [[0.1, 1e-05]]})[1]
    assert finite.startswith('{"predictions":[[0.1,') and finite.endswith("]]}")
    assert text == finite[:-len("]]}")] + ',0.2,Infinity,1.0]]}'
    assert "0.10000000149011612" not in text


def test_classify_and_regress_write_nonfinite_scores_as_tokens(client):
    example = {"x": [2.0]}
    code, text = post(client, CLASSIFY, {"signature_name": "classify_nonfinite",
                                         "examples": [example]})
    assert (code, text) == (200, '{"results":[[["",0.2],["",Infinity],["",1.0],'
                                 '["",-Infinity],["",NaN]]]}')
    code, text = post(client, REGRESS, {"signature_name": "regress_nonfinite",
                                        "examples": [example, {"x": [-1.0]}]})
    assert (code, text) == (200, '{"results":[Infinity,-Infinity]}')


def test_classify_and_regress_refuse_outputs_of_the_wrong_type(client):
    example = {"examples": [{"x": [2.0]}]}
    assert post(client, CLASSIFY, {"signature_name": "classify_int_scores", **example}) == (
        400, '{"error":"Expected scores Tensor of DT_FLOAT. Got: DT_INT32"}')
    assert post(client, REGRESS, {"signature_name": "regress_double", **example}) == (
        400, '{"error":"Expected output Tensor of DT_FLOAT.  Got: DT_DOUBLE"}')


@pytest.mark.parametrize("body,message", [
    (b"{not json", "JSON Parse error: Missing a name for object member. at offset: 1"),
    (b"abc", "JSON Parse error: Invalid value. at offset: 0"),
    (b'{"instances": [1 2]}', "JSON Parse error: Missing a comma or ']' after an array "
                              "element. at offset: 17"),
    (b'{"instances": [1] "x": 2}', "JSON Parse error: Missing a comma or '}' after an "
                                   "object member. at offset: 18"),
    (b'{"instances": [[1, 2]], "signature_name": "flo', "JSON Parse error: Missing a closing "
                                                        "quotation mark in string. at offset: 46"),
    (b'{"instances": [[1, 2]], "x" 1}', "JSON Parse error: Missing a colon after a name of "
                                       "object member. at offset: 28"),
    (b'{"instances": [[1, 2]], "x": [', "JSON Parse error: Invalid value. at offset: 30"),
    (b"   ", "JSON Parse error: The document is empty. at offset: 3"),
    (b'{"x": "\\q"}', "JSON Parse error: Invalid escape character in string. at offset: 7"),
    (b'{"x": [NaN], "y": ' + b"[" * 1100 + b"]" * 1100 + b"}",
     "JSON Parse error: nested deeper than 1024 levels at offset: 1041"),
    (b'{"y": ' + b"[" * 1100 + b"]" * 1100 + b"}",
     "JSON Parse error: nested deeper than 1024 levels at offset:"),
])
def test_malformed_bodies_get_rapidjsons_messages(client, body, message):
    code, text = post(client, PREDICT, body)
    assert code == 400 and json.loads(text)["error"].startswith(message), text


def test_what_follows_the_document_is_ignored_and_deep_unused_keys_parse(client):
    # kParseStopWhenDoneFlag; nesting up to the bound parses wherever it is.
    ok = '{"signature_name": "float32", "instances": [[1, 2]]'
    assert post(client, PREDICT, ok + "} trailing")[0] == 200
    assert post(client, PREDICT, ok + ', "x": [NaN]} {]')[0] == 200
    deep = ok + ', "unused": ' + "[" * 1000 + "]" * 1000 + "}"
    assert post(client, PREDICT, deep) == (200, '{"predictions":[[1.0,2.0]]}')
    assert post(client, PREDICT, ok + ', "x": NaN} ' + "[" * 2000)[0] == 200
